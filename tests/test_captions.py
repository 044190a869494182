"""Tests for sora_lite.captions: the training caption table and the held-out vocabulary."""

import re

from sora_lite import captions as C
from sora_lite.datasets import moving_shapes as ms


def _words(text):
    return set(re.findall(r"[a-z]+", text.lower()))


def test_table_is_subject_major_with_the_spec_captions_first():
    table = C.caption_table()
    assert len(C.SUBJECTS) == 90 and len(table) == 90 * C.PER_SUBJECT
    for i, subject in enumerate(C.SUBJECTS):
        rows = table[i * C.PER_SUBJECT : (i + 1) * C.PER_SUBJECT]
        assert len(set(rows)) == C.PER_SUBJECT  # distinct wordings
        assert rows[:4] == C.spec_captions(subject)
        color, shape, direction = subject
        assert ms.caption(color, shape, direction, 0) == rows[0]
    assert C.caption_table() == table  # fixed: a pure function of the vocabulary


def test_paraphrases_name_the_subject_in_train_words():
    table = C.caption_table()
    for i, (color, shape, direction) in enumerate(C.SUBJECTS):
        for row in table[i * C.PER_SUBJECT + 4 : (i + 1) * C.PER_SUBJECT]:
            assert any(w in row for w in C.TRAIN["color"][color]), row
            assert any(w in row for w in C.TRAIN["shape"][shape]), row
            if direction is None:
                assert not any(p in row for ps in C.TRAIN["motion"].values() for pair in ps for p in pair), row
            else:
                assert any(p in row for pair in C.TRAIN["motion"][direction] for p in pair), row


def test_no_training_caption_uses_a_heldout_word():
    trained = set().union(*map(_words, C.caption_table()))
    heldout = set().union(*(_words(C.heldout_caption(s, i)) for s in C.SUBJECTS for i in range(8)))
    new = heldout - trained
    # Every colour, shape and verb word of the held-out vocabulary is new; only glue words repeat.
    assert heldout & trained <= {"a", "an", "the", "one", "left", "right"}
    for attribute in ("color", "shape"):
        for words in C.HELDOUT[attribute].values():
            assert all(_words(w) <= new for w in words), words
    assert C.heldout_caption(C.SUBJECTS[0], 3) == C.heldout_caption(C.SUBJECTS[0], 3)


def test_sample_prompts():
    assert C.sample_prompts() == ["a red circle moving left", "a blue square moving up",
                                  "a yellow triangle moving right", "a green circle moving left"]
    assert C.sample_prompts(image=True)[0] == "a red circle"


def test_vocabulary_probe_reads_what_an_embedding_knows_of_new_words():
    import numpy as np

    def knows(prompts):  # an embedding that knows every word of both vocabularies: one-hot attributes
        names = [(attr, value, word) for vocab in (C.TRAIN, C.HELDOUT) for attr in ("color", "shape", "motion")
                 for value, words in vocab[attr].items() for word in words]
        values = sorted({(attr, value) for attr, value, _ in names})
        out = np.zeros((len(prompts), len(values)))
        for i, p in enumerate(prompts):
            for attr, value, word in names:
                phrase = word if isinstance(word, str) else word[0]  # motions: (participle, third person)
                if re.search(rf"\b{phrase}\b", p) or (not isinstance(word, str) and re.search(rf"\b{word[1]}\b", p)):
                    out[i, values.index((attr, value))] = 1.0
        return out + 0.01 * np.random.default_rng(0).standard_normal(out.shape)  # no constant columns

    train, test = ([c for c, _ in pairs] for pairs in C.probe_captions())
    knowing = C.vocabulary_probe(knows(train), knows(test))
    assert all(v == 100.0 for probe in knowing.values() for v in probe.values()), knowing
    rng = np.random.default_rng(0)
    noise = C.vocabulary_probe(rng.standard_normal((len(train), 64)), rng.standard_normal((len(test), 64)))
    assert all(v < 60.0 for probe in noise.values() for v in probe.values()), noise


def test_probe_script_names_a_missing_output_folder_in_one_line(tmp_path):
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = tmp_path / "missing" / "probe.json"
    run = subprocess.run([sys.executable, os.path.join(root, "scripts", "probe_text.py"), "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip() == (f"probe_text.py: error: --out {str(out)!r}: no folder {out.parent}; "
                                  "create it or write elsewhere")
