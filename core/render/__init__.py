"""Headless software rendering of fitted meshes (no Qt, no OpenGL)."""
