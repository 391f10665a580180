"""Blinks and lip contacts: found in the observations, reached by the fitted curves.

detect (closed eyes and lips per frame, from the landmarks), enforce (floors under eyeBlink and
mouthClose that reach them, measured on the model's mesh), floor (a floor applied to the curves),
stage (the analysis stage that stores the floors in the take; ``Take.read_fit`` applies them).
The package imports none of them, so that reading a take's floor does not load the face model.
"""
