"""A vispy SceneCanvas drawn into a native OpenGL window (QOpenGLWindow) that a widget layout holds
through ``QWidget.createWindowContainer``, instead of vispy's own QOpenGLWidget.

Why: while a QOpenGLWidget is anywhere in a window, Qt composes the whole window through OpenGL
on every repaint of any widget in it. With software OpenGL (llvmpipe, what Xvfb and many laptops
without a GPU driver give) that is ~22 ms for a 1500 x 950 window, so a progress label or a
timeline update cost as much as a 3D frame (measured: 21.6 ms per label update against 0.5 ms
with this window; /benchmarks/bench_app.py). A native child window is drawn on its own; the rest
of the window stays on Qt's raster path.

The embedded window never takes keyboard focus, so the main window's shortcuts keep working;
``native.pressed`` tells the holder of a click, to focus itself and handle the keys.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtOpenGL import QOpenGLWindow
from PySide6.QtWidgets import QApplication, QWidget
from vispy import scene
from vispy.app.backends import _pyside6  # vispy's PySide6 entry point; it loads its shared Qt module

_qt = _pyside6._qt


_DRAG_EVENTS = (QEvent.DragEnter, QEvent.DragMove, QEvent.DragLeave, QEvent.Drop)


class GLWindowBackend(_qt.QtBaseCanvasBackend, QOpenGLWindow):
    """vispy's Qt canvas backend on a QOpenGLWindow (vispy's desktop backend, minus what only a
    QWidget has). QOpenGLWindow swaps buffers itself after :meth:`paintGL`. ``pressed`` fires on
    every mouse press, before vispy sees it."""

    pressed = Signal()

    def _init_specific(self, p, kwargs) -> None:
        QOpenGLWindow.__init__(self)
        glformat = _qt._set_config(p.context.config)
        glformat.setSwapInterval(1 if p.vsync else 0)
        self.setFormat(glformat)
        self.setFlag(Qt.WindowDoesNotAcceptFocus, True)
        p.context.shared.add_ref("qt-window", self)
        self.forward_drops_to: QWidget | None = None
        self._initialized = True

    # QWidget API that vispy's shared Qt code calls
    def setMouseTracking(self, on: bool) -> None:  # noqa: N802 (Qt name); a QWindow always gets moves
        pass

    def setWindowTitle(self, title: str) -> None:  # noqa: N802 (Qt name)
        self.setTitle(title)

    def _vispy_set_current(self) -> None:
        if self._vispy_canvas is not None and self.isValid():
            self.makeCurrent()

    def _vispy_swap_buffers(self) -> None:
        pass  # QOpenGLWindow swaps after paintGL; canvas.render() draws into its own framebuffer

    def _vispy_get_fb_bind_location(self) -> int:
        return self.defaultFramebufferObject()

    def _vispy_close(self) -> None:
        if self.isValid():
            self.makeCurrent()
        self._vispy_canvas = None
        self.destroy()

    def event(self, ev) -> bool:
        # A file dragged over the 3D view goes to the window that holds it (a plain QWindow
        # would refuse the drop).
        if ev.type() in _DRAG_EVENTS and self.forward_drops_to is not None:
            return QApplication.sendEvent(self.forward_drops_to.window(), ev)
        return super().event(ev)

    def mousePressEvent(self, ev) -> None:  # noqa: N802 (Qt)
        self.pressed.emit()
        super().mousePressEvent(ev)

    def initializeGL(self) -> None:  # noqa: N802 (Qt)
        if self._vispy_canvas is not None:
            self._vispy_canvas.events.initialize()

    def resizeGL(self, w: int, h: int) -> None:  # noqa: N802 (Qt)
        if self._vispy_canvas is None:
            return
        ratio = self.devicePixelRatio()
        physical = (int(w * ratio), int(h * ratio))
        self._vispy_set_physical_size(*physical)
        self._vispy_canvas.events.resize(size=(self.width(), self.height()), physical_size=physical)

    def paintGL(self) -> None:  # noqa: N802 (Qt)
        if self._vispy_canvas is None:
            return
        self._vispy_canvas.set_current()
        self._vispy_canvas.events.draw(region=None)


class WindowSceneCanvas(scene.SceneCanvas):
    """A SceneCanvas on :class:`GLWindowBackend`. ``native`` is the QOpenGLWindow; put
    :attr:`widget` (its container) in layouts and give it sizes."""

    def __init__(self, *args, parent: QWidget | None = None, **kwargs) -> None:
        super().__init__(*args, app="pyside6", **kwargs)
        self.unfreeze()
        self.widget = QWidget.createWindowContainer(self.native, parent)
        # The container deletes its window, but PySide keeps the window as Python's and deletes it
        # at exit, before QApplication's destructor then reaches the container's dangling pointer
        # (a crash on quitting). Re-setting the QObject parent the container gave it, through
        # Python, hands the ownership to Qt.
        QObject.setParent(self.native, self.native.parent())
        self.native.forward_drops_to = self.widget
        self.freeze()

    def create_native(self) -> None:
        if self._backend is not None:
            return
        assert self._app.native
        GLWindowBackend(self, **self._backend_kwargs)
        self._backend_kwargs = None
        self.events.draw.connect(self.context.flush_commands, position="last")
