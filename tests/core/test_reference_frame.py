"""The frame whose pixels texture the reconstruction shows the face uncovered."""

from core.observe.hands import HandDetector
from core.render.reconstruction import choose_reference_frame
from core.render.reference import choose_uncovered_reference_frame
from core.take import Take
from core.video import open_source
from tests.conftest import fixture_path

# Looked at, frame by frame: in the Wolfgang clip the performer covers her face with a hand from
# about frame 60 to 225 (crying), and not from 230 on (laughing); the fit's quietest frame is 212,
# where her hand is over her mouth.
HANDS_OVER_FACE = range(60, 226)


def test_a_hand_over_the_mouth_is_not_taken_as_the_reference_frame(wolfgang_take, wolfgang):
    _, take_dir = wolfgang_take
    take = Take.open(take_dir)
    fit, observations = take.read_fit(), take.load_observations()
    quietest = choose_reference_frame(fit)
    with open_source(wolfgang) as source, HandDetector() as hands:
        chosen = choose_uncovered_reference_frame(fit, observations, source.read)
        print(f"quietest frame {quietest}, chosen {chosen}")
        assert quietest in HANDS_OVER_FACE
        assert hands.covers_face(source.read(quietest), observations.landmarks[quietest])
        assert chosen not in HANDS_OVER_FACE
        assert not hands.covers_face(source.read(chosen), observations.landmarks[chosen])
        # a hand elsewhere in the picture does not cover the face: the face's outline moved aside
        moved = observations.landmarks[quietest].copy()
        moved[:, 0] += source.info.width
        assert not hands.covers_face(source.read(quietest), moved)
    if take.manifest.emotion is not None:  # the emotion stage renders with the same choice
        assert take.manifest.emotion.reference_frame == chosen


def test_without_a_hand_the_reference_is_the_quietest_frame(single_emotion_take):
    _, take_dir = single_emotion_take
    take = Take.open(take_dir)
    fit, observations = take.read_fit(), take.load_observations()
    with open_source(fixture_path("single_face.mp4")) as source:
        chosen = choose_uncovered_reference_frame(fit, observations, source.read)
    assert chosen == choose_reference_frame(fit)
    assert take.manifest.emotion.reference_frame == chosen
