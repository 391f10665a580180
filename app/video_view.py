"""The video panel: the current frame, fitted to the panel, with optional overlays of the observed
landmarks and of the fitted mesh projected through the fitted camera."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QWidget

LANDMARK_COLOUR = QColor(80, 220, 120)
MESH_COLOUR = QColor(90, 170, 255, 150)


class VideoView(QWidget):
    """Shows an RGB frame (H x W x 3 uint8) with overlays in image pixel coordinates."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(240, 135)
        self.setAttribute(Qt.WA_OpaquePaintEvent)
        self._image: QImage | None = None
        self._buffer: np.ndarray | None = None  # keeps the QImage's pixels alive
        self._landmarks: np.ndarray | None = None
        self._mesh_points: np.ndarray | None = None
        self._edges: np.ndarray | None = None
        self.show_landmarks = True
        self.show_mesh = False
        self.message = "Open a video, an image or a folder of images (File > Open, or drop it here)"

    def set_edges(self, edges: np.ndarray | None) -> None:
        """E x 2 vertex index pairs of the mesh overlay."""
        self._edges = edges

    def set_frame(self, image: np.ndarray | None, landmarks: np.ndarray | None = None,
                  mesh_points: np.ndarray | None = None) -> None:
        """image: H x W x 3 uint8 RGB; landmarks: L x 2 px; mesh_points: V x 2 px (or None)."""
        if image is None:
            self._image = self._buffer = None
        else:
            self._buffer = np.ascontiguousarray(image)
            h, w = self._buffer.shape[:2]
            self._image = QImage(self._buffer.data, w, h, 3 * w, QImage.Format_RGB888)
        self._landmarks = landmarks
        self._mesh_points = mesh_points
        self.update()

    def set_overlays(self, landmarks: bool, mesh: bool) -> None:
        self.show_landmarks, self.show_mesh = landmarks, mesh
        self.update()

    def image_rect(self) -> QRectF:
        """Where the image is drawn in the widget (aspect kept, centred)."""
        if self._image is None:
            return QRectF()
        w, h = self._image.width(), self._image.height()
        scale = min(self.width() / w, self.height() / h)
        return QRectF((self.width() - w * scale) / 2, (self.height() - h * scale) / 2, w * scale, h * scale)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(24, 25, 28))
        if self._image is None:
            painter.setPen(QColor(150, 150, 150))
            painter.drawText(self.rect(), Qt.AlignCenter | Qt.TextWordWrap, self.message)
            return
        target = self.image_rect()
        painter.setRenderHint(QPainter.SmoothPixmapTransform)
        painter.drawImage(target, self._image)
        scale = target.width() / self._image.width()
        painter.setRenderHint(QPainter.Antialiasing)
        if self.show_mesh and self._mesh_points is not None and self._edges is not None:
            p = self._mesh_points * scale + [target.x(), target.y()]
            a, b = p[self._edges[:, 0]], p[self._edges[:, 1]]
            painter.setPen(QPen(MESH_COLOUR, 1.0))
            painter.drawLines([QLineF(x0, y0, x1, y1) for (x0, y0), (x1, y1) in zip(a.tolist(), b.tolist())])
        if self.show_landmarks and self._landmarks is not None:
            p = self._landmarks * scale + [target.x(), target.y()]
            painter.setPen(QPen(LANDMARK_COLOUR, max(1.5, 2.0 * scale)))
            painter.drawPoints([QPointF(x, y) for x, y in p.tolist()])
