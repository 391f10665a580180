"""An indexed, per-vertex-coloured, headlight-shaded mesh for vispy.

vispy's own MeshVisual expands every triangle's vertices on the CPU and uploads them with each
change. Here the triangles (or edges, for the wireframe) go to the GPU once as an index buffer;
a frame uploads only V positions, V normals and V colours, shared by the surface and its wireframe.
"""

from __future__ import annotations

import numpy as np
from vispy import gloo
from vispy.scene.visuals import create_visual_node
from vispy.visuals import Visual

VERTEX_SHADER = """
attribute vec3 a_position;
attribute vec3 a_normal;
attribute vec3 a_color;
varying vec3 v_normal;
varying vec3 v_color;
void main() {
    v_normal = a_normal;
    v_color = a_color;
    gl_Position = $transform(vec4(a_position, 1.0));
}
"""

FRAGMENT_SHADER = """
uniform vec3 u_light;     // direction the light travels, model space
uniform vec4 u_tint;      // rgb multiplied with the vertex colour; a = 0: shaded, 1: flat (wire)
varying vec3 v_normal;
varying vec3 v_color;
void main() {
    vec3 base = v_color * u_tint.rgb;
    if (u_tint.a > 0.5) {
        gl_FragColor = vec4(base, 1.0);
        return;
    }
    vec3 n = normalize(v_normal);
    float diffuse = abs(dot(n, -u_light));  // two-sided: the inside of the lips stays lit
    vec3 h = normalize(-u_light + vec3(0.0, 0.0, 1.0));
    float specular = pow(max(abs(dot(n, h)), 0.0), 40.0) * 0.15;
    gl_FragColor = vec4(base * (0.28 + 0.72 * diffuse) + specular, 1.0);
}
"""


class MeshBuffers:
    """GPU buffers of one mesh: positions, normals and colours (V x 3 float32 each); an update
    with another V resizes them (a new topology)."""

    def __init__(self, num_vertices: int) -> None:
        zeros = np.zeros((num_vertices, 3), np.float32)
        self.positions = gloo.VertexBuffer(zeros)
        self.normals = gloo.VertexBuffer(zeros)
        self.colours = gloo.VertexBuffer(zeros + 0.8)

    def update(self, positions: np.ndarray, normals: np.ndarray, colours: np.ndarray | None) -> None:
        self.positions.set_data(np.ascontiguousarray(positions, np.float32))
        self.normals.set_data(np.ascontiguousarray(normals, np.float32))
        if colours is not None:
            self.colours.set_data(np.ascontiguousarray(colours, np.float32))


class IndexedMeshVisual(Visual):
    """Draws ``buffers`` as triangles (``indices`` F x 3) or lines (``indices`` E x 2)."""

    def __init__(self, buffers: MeshBuffers, indices: np.ndarray, mode: str = "triangles") -> None:
        Visual.__init__(self, vcode=VERTEX_SHADER, fcode=FRAGMENT_SHADER)
        self._draw_mode = mode
        self._index_buffer = gloo.IndexBuffer(np.ascontiguousarray(indices, np.uint32))
        self.shared_program["a_position"] = buffers.positions
        self.shared_program["a_normal"] = buffers.normals
        self.shared_program["a_color"] = buffers.colours
        self.shared_program["u_light"] = (0.0, 0.0, -1.0)
        self.shared_program["u_tint"] = (1.0, 1.0, 1.0, 0.0) if mode == "triangles" else (0.1, 0.1, 0.1, 1.0)
        if mode == "triangles":
            self.set_gl_state("opaque", depth_test=True, cull_face=False, polygon_offset_fill=True,
                              polygon_offset=(1.0, 1.0))
        else:
            self.set_gl_state("translucent", depth_test=True, cull_face=False)

    def set_indices(self, indices: np.ndarray) -> None:
        """New triangles (F x 3) or edges (E x 2) into the same index buffer (a new topology)."""
        self._index_buffer.set_data(np.ascontiguousarray(indices, np.uint32))
        self.update()

    def set_light(self, direction: np.ndarray) -> None:
        d = np.asarray(direction, np.float32)
        self.shared_program["u_light"] = tuple(d / max(np.linalg.norm(d), 1e-9))

    def set_tint(self, rgb: tuple[float, float, float], flat: bool) -> None:
        self.shared_program["u_tint"] = (*rgb, 1.0 if flat else 0.0)

    def _prepare_transforms(self, view) -> None:
        view.view_program.vert["transform"] = view.get_transform()

    def _prepare_draw(self, view) -> bool:
        return True

    def _compute_bounds(self, axis, view):
        return None


IndexedMesh = create_visual_node(IndexedMeshVisual)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (V x 3 float32) of V x 3 vertices and F x 3 triangles."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    face_normals = np.cross(b - a, c - a)
    normals = np.zeros_like(vertices, dtype=np.float64)
    for k in range(3):
        for axis in range(3):
            normals[:, axis] += np.bincount(faces[:, k], face_normals[:, axis], minlength=len(vertices))
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return (normals / np.maximum(length, 1e-12)).astype(np.float32)


def mesh_edges(faces: np.ndarray) -> np.ndarray:
    """Unique undirected edges (E x 2) of F x 3 triangles."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return np.unique(np.sort(edges, axis=1), axis=0)
