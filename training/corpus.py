"""The project's own corpus: a small, finite, seeded grammar of English sentences.

Two languages share one English vocabulary:

* the **translation language**: every sentence has exactly one gold French translation
  (``translate``). Five families:

  - ``transitive``  the [ADJ] NOUN VERB the [ADJ] NOUN   the black cat ate the mouse
  - ``sat``         the [ADJ] NOUN sat on the SEAT        the cat sat on the mat
  - ``went``        PRONOUN went to the PLACE [yesterday] i went to the store
  - ``preference``  i|we [do not] love|like|hate THING    i love machine learning
  - ``politeness``  a few fixed phrases                   you are welcome

* the **sentiment language**: every sentence has a gold label in ``SENTIMENT_LABELS``
  (``sentiment_label``). It is the ``judgement`` family
  ``the|this|that SUBJECT was|is [not] [very|really] ADJ`` plus the whole translation language:
  ``preference`` sentences are positive (love, like) or negative (hate), every other
  translation sentence is neutral. **Negation flips positive and negative and leaves
  neutral alone**: "the movie was not good" is negative, "the food was not bad" positive,
  "the movie was not long" neutral. Intensifiers (very, really) never change the label.

Everything is lowercase, without final punctuation, words separated by single spaces.

Splits. The same seed gives the same data in any process (only ``random.Random`` with
explicit seeds, never set iteration order). ``heldout_combinations(seed)`` picks a few
*combinations* of words: (adjective, noun) pairs, unordered (noun, noun) pairs of the
transitive family, (verb, thing) pairs of the preference family. A sentence that contains
one of them is held-out: it is never used for training by any task, so held-out metrics
measure generalisation to combinations the models never saw. The lecture-note sentences
(``LECTURE_PAIRS``) and their combinations are never held out. Validation is a seeded 5 %
of every other family, disjoint from train. The three tasks (translation, sentiment,
language modelling) share this one partition, so a sentence held out for one task is
never a training sentence of another.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# --------------------------------------------------------------------------- lexicon

#: english noun -> (french noun, gender)
NOUNS: dict[str, tuple[str, str]] = {
    "cat": ("chat", "m"),
    "dog": ("chien", "m"),
    "mouse": ("souris", "f"),
    "bear": ("ours", "m"),
    "man": ("homme", "m"),
    "woman": ("femme", "f"),
    "bird": ("oiseau", "m"),
    "fish": ("poisson", "m"),
    "girl": ("fille", "f"),
    "boy": ("garçon", "m"),
    "honey": ("miel", "m"),
    "cheese": ("fromage", "m"),
    "apple": ("pomme", "f"),
    "house": ("maison", "f"),
    "car": ("voiture", "f"),
    "book": ("livre", "m"),
}
#: nouns that can be the subject of a verb
ANIMATE = ("cat", "dog", "mouse", "bear", "man", "woman", "bird", "fish", "girl", "boy")
EDIBLE = ("mouse", "fish", "bird", "honey", "cheese", "apple")
HUMAN = ("man", "woman", "girl", "boy")

#: english adjective -> (masculine, feminine, placed before the noun in french)
ADJECTIVES: dict[str, tuple[str, str, bool]] = {
    "black": ("noir", "noire", False),
    "white": ("blanc", "blanche", False),
    "red": ("rouge", "rouge", False),
    "green": ("vert", "verte", False),
    "small": ("petit", "petite", True),
    "big": ("grand", "grande", True),
    "young": ("jeune", "jeune", True),
    "happy": ("heureux", "heureuse", False),
}
#: the nouns each adjective may describe: no "red man" or "happy apple"
ADJECTIVE_NOUNS: dict[str, tuple[str, ...]] = {
    **{a: tuple(n for n in NOUNS if n not in HUMAN) for a in ("black", "white", "red", "green")},
    **{a: tuple(NOUNS) for a in ("small", "big")},
    **{a: ANIMATE for a in ("young", "happy")},
}

#: english verb -> (french, the object nouns it accepts)
VERBS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ate": ("a mangé", EDIBLE),
    "saw": ("a vu", tuple(NOUNS)),
    "liked": ("a aimé", tuple(NOUNS)),
    "found": ("a trouvé", tuple(NOUNS)),
    "bites": ("mord", ANIMATE),
    "sees": ("voit", tuple(NOUNS)),
}

#: things to sit on: english -> (french, gender)
SEATS: dict[str, tuple[str, str]] = {
    "mat": ("tapis", "m"),
    "chair": ("chaise", "f"),
    "bed": ("lit", "m"),
    "table": ("table", "f"),
    "floor": ("sol", "m"),
    "sofa": ("canapé", "m"),
    "bench": ("banc", "m"),
    "grass": ("herbe", "f"),
    "box": ("boîte", "f"),
    "roof": ("toit", "m"),
}
SITTERS = tuple(n for n in ANIMATE if n != "fish")

#: places to go to: english -> (french, gender)
PLACES: dict[str, tuple[str, str]] = {
    "store": ("magasin", "m"),
    "park": ("parc", "m"),
    "house": ("maison", "f"),
    "school": ("école", "f"),
    "market": ("marché", "m"),
    "beach": ("plage", "f"),
    "library": ("bibliothèque", "f"),
    "cinema": ("cinéma", "m"),
    "station": ("gare", "f"),
    "hospital": ("hôpital", "m"),
    "museum": ("musée", "m"),
    "office": ("bureau", "m"),
    "restaurant": ("restaurant", "m"),
    "airport": ("aéroport", "m"),
    "bank": ("banque", "f"),
    "zoo": ("zoo", "m"),
}
PLACE_NOUNS: frozenset[str] = frozenset(PLACES)
#: english pronoun -> french "went" (passé composé with être, so it agrees with the subject)
WENT: dict[str, str] = {
    "i": "je suis allé",
    "he": "il est allé",
    "she": "elle est allée",
    "we": "nous sommes allés",
    "they": "ils sont allés",
}

#: things one loves or hates: english (no article) -> french (with its article)
THINGS: dict[str, str] = {
    "machine learning": "l'apprentissage automatique",
    "music": "la musique",
    "cheese": "le fromage",
    "honey": "le miel",
    "chocolate": "le chocolat",
    "coffee": "le café",
    "tea": "le thé",
    "pizza": "la pizza",
    "math": "les maths",
    "history": "l'histoire",
    "summer": "l'été",
    "winter": "l'hiver",
    "rain": "la pluie",
    "football": "le football",
    "cats": "les chats",
    "dogs": "les chiens",
    "books": "les livres",
    "movies": "les films",
    "apples": "les pommes",
    "school": "l'école",
}
#: verb -> (french after "i", after "we", after "i do not", after "we do not", polarity)
PREFERENCE_VERBS: dict[str, tuple[str, str, str, str, int]] = {
    "love": ("j'aime", "nous aimons", "je n'aime pas", "nous n'aimons pas", 1),
    "like": ("j'aime bien", "nous aimons bien", "je n'aime pas", "nous n'aimons pas", 1),
    "hate": ("je déteste", "nous détestons", "je ne déteste pas", "nous ne détestons pas", -1),
}

POLITENESS: dict[str, str] = {
    "you are welcome": "de rien",
    "thank you": "merci",
    "thank you very much": "merci beaucoup",
    "good morning": "bonjour",
    "good evening": "bonsoir",
    "good night": "bonne nuit",
    "see you tomorrow": "à demain",
    "see you soon": "à bientôt",
    "goodbye": "au revoir",
    "excuse me": "excusez-moi",
    "how are you": "comment allez-vous",
    "i am sorry": "je suis désolé",
    "please": "s'il vous plaît",
}

SENTIMENT_LABELS = ("negative", "neutral", "positive")
SENTIMENT_SUBJECTS = (
    "movie", "film", "food", "book", "song", "game", "class", "weather",
    "pizza", "show", "concert", "story", "coffee", "lecture", "hotel", "trip",
)  # fmt: skip
POSITIVE = ("good", "great", "excellent", "wonderful", "amazing", "fun", "nice", "brilliant",
            "enjoyable", "perfect")  # fmt: skip
NEGATIVE = ("bad", "terrible", "awful", "boring", "horrible", "poor", "dull", "disappointing",
            "annoying", "weak")  # fmt: skip
NEUTRAL = ("long", "short", "new", "old", "red", "black", "white", "big", "small", "late")
_POLARITY = {**{a: 1 for a in POSITIVE}, **{a: -1 for a in NEGATIVE}, **{a: 0 for a in NEUTRAL}}
_LABEL = {-1: "negative", 0: "neutral", 1: "positive"}

#: the lecture-note sentences of DESIGN.md section 4 with their expected translations
LECTURE_PAIRS: list[tuple[str, str]] = [
    ("the black cat ate the mouse", "le chat noir a mangé la souris"),
    ("i love machine learning", "j'aime l'apprentissage automatique"),
    ("you are welcome", "de rien"),
    ("the cat sat on the mat", "le chat s'est assis sur le tapis"),
    ("the dog bites the man", "le chien mord l'homme"),
    ("the man bites the dog", "l'homme mord le chien"),
    ("the bear ate the honey", "l'ours a mangé le miel"),
    ("i went to the store", "je suis allé au magasin"),
]
#: more sentences whose combinations must stay in training (examples in docs and tests)
_PROTECTED_EXAMPLES = (
    "the young man saw the white bird",
    "the happy girl found the green apple",
    "the movie was good",
    "the movie was not good",
    "the food was bad",
    "the food was not bad",
    "the movie was long",
    "the book was red",
)

# ------------------------------------------------------------------- french helpers

_ELIDING = tuple("aeiouàâéèêîôûh")  # every h of the lexicon is mute (homme, hôpital, hiver)


def _with_article(gender: str, phrase: str) -> str:
    """Put le/la in front of ``phrase``, eliding to l' before a vowel or mute h."""
    if phrase.startswith(_ELIDING):
        return "l'" + phrase
    return ("le " if gender == "m" else "la ") + phrase


def _french_np(noun: str, adj: str | None = None) -> str:
    """'the [adj] noun' in French: article, agreement, placement and elision.

    >>> _french_np("man", "young"), _french_np("man"), _french_np("mouse", "black")
    ('le jeune homme', "l'homme", 'la souris noire')
    """
    word, gender = NOUNS[noun]
    if adj is not None:
        masculine, feminine, before = ADJECTIVES[adj]
        form = masculine if gender == "m" else feminine
        word = f"{form} {word}" if before else f"{word} {form}"
    return _with_article(gender, word)


def _english_np(noun: str, adj: str | None = None) -> str:
    return f"the {adj} {noun}" if adj else f"the {noun}"


def _to_place(place: str) -> str:
    """'to the place': à + le contracts to au (au magasin, à la plage, à l'école)."""
    word, gender = PLACES[place]
    phrase = _with_article(gender, word)
    return "au " + phrase[3:] if phrase.startswith("le ") else "à " + phrase


# ------------------------------------------------------------------------- grammar


@dataclass(frozen=True)
class _Sentence:
    en: str
    family: str
    fr: str | None  # None: not in the translation language
    label: str | None  # None: not in the sentiment language
    combos: frozenset[tuple[str, str, str]]  # see heldout_combinations


def _adj_combo(adj: str | None, noun: str) -> set[tuple[str, str, str]]:
    return {("adj", adj, noun)} if adj else set()


def _pair_combo(a: str, b: str) -> tuple[str, str, str]:
    return ("pair", *sorted((a, b)))


def _adjective_choices(noun: str) -> list[str | None]:
    """No adjective, or one of those that may describe ``noun``."""
    return [None, *(a for a, nouns in ADJECTIVE_NOUNS.items() if noun in nouns)]


def _transitive():
    """the [ADJ] NOUN VERB the [ADJ] NOUN (two different nouns)."""
    for subj in ANIMATE:
        for verb, (verb_fr, objects) in VERBS.items():
            for obj in objects:
                if obj == subj:
                    continue
                for a1 in _adjective_choices(subj):
                    for a2 in _adjective_choices(obj):
                        en = f"{_english_np(subj, a1)} {verb} {_english_np(obj, a2)}"
                        fr = f"{_french_np(subj, a1)} {verb_fr} {_french_np(obj, a2)}"
                        combos = _adj_combo(a1, subj) | _adj_combo(a2, obj)
                        combos.add(_pair_combo(subj, obj))
                        yield _Sentence(en, "transitive", fr, "neutral", frozenset(combos))


def _sat():
    """the [ADJ] NOUN sat on the SEAT: "s'est assis(e)" agrees with the subject."""
    for subj in SITTERS:
        sat = "s'est assis" if NOUNS[subj][1] == "m" else "s'est assise"
        for adj in _adjective_choices(subj):
            for seat, (seat_fr, gender) in SEATS.items():
                en = f"{_english_np(subj, adj)} sat on the {seat}"
                fr = f"{_french_np(subj, adj)} {sat} sur {_with_article(gender, seat_fr)}"
                yield _Sentence(en, "sat", fr, "neutral", frozenset(_adj_combo(adj, subj)))


def _went():
    """PRONOUN went to the PLACE [yesterday]."""
    for pronoun, went in WENT.items():
        for place in PLACES:
            for when, when_fr in (("", ""), (" yesterday", " hier")):
                en = f"{pronoun} went to the {place}{when}"
                fr = f"{went} {_to_place(place)}{when_fr}"
                yield _Sentence(en, "went", fr, "neutral", frozenset())


def _preference():
    """i|we [do not] love|like|hate THING: positive or negative, negation flips."""
    for verb, (i_fr, we_fr, i_not_fr, we_not_fr, polarity) in PREFERENCE_VERBS.items():
        forms = [
            (f"i {verb}", i_fr, polarity),
            (f"we {verb}", we_fr, polarity),
            (f"i do not {verb}", i_not_fr, -polarity),
            (f"we do not {verb}", we_not_fr, -polarity),
        ]
        for start, start_fr, sign in forms:
            for thing, thing_fr in THINGS.items():
                en, fr = f"{start} {thing}", f"{start_fr} {thing_fr}"
                combos = frozenset({("pref", verb, thing)})
                yield _Sentence(en, "preference", fr, _LABEL[sign], combos)


def _politeness():
    for en, fr in POLITENESS.items():
        yield _Sentence(en, "politeness", fr, "neutral", frozenset())


def _judgement():
    """the|this|that SUBJECT was|is [not] [very|really] ADJ: sentiment only."""
    for det in ("the", "this", "that"):
        for subj in SENTIMENT_SUBJECTS:
            for copula in ("was", "is"):
                for negated in (False, True):
                    for intensifier in ("", "very ", "really "):
                        for adj, polarity in _POLARITY.items():
                            neg = " not" if negated else ""
                            en = f"{det} {subj} {copula}{neg} {intensifier}{adj}"
                            label = _LABEL[-polarity if negated else polarity]
                            combos = frozenset({("adj", adj, subj)})
                            yield _Sentence(en, "judgement", None, label, combos)


_FAMILIES = (_transitive, _sat, _went, _preference, _politeness, _judgement)


@lru_cache(maxsize=1)
def _grammar() -> dict[str, _Sentence]:
    """Every sentence of both languages, keyed by its English text."""
    table: dict[str, _Sentence] = {}
    for family in _FAMILIES:
        for sentence in family():
            if sentence.en in table:
                raise AssertionError(f"grammar generates {sentence.en!r} twice")
            table[sentence.en] = sentence
    for en, fr in LECTURE_PAIRS:
        if table[en].fr != fr:
            raise AssertionError(f"{en!r} -> {table[en].fr!r}, expected {fr!r}")
    return table


def _normalize(text: str) -> str:
    return " ".join(text.lower().split())


def translate(en: str) -> str:
    """The gold French translation of a sentence of the translation language.

    Case and extra whitespace are ignored. Raises KeyError for any other text.
    """
    sentence = _grammar().get(_normalize(en))
    if sentence is None or sentence.fr is None:
        raise KeyError(f"not a sentence of the translation language: {en!r}")
    return sentence.fr


def english_sentences() -> list[str]:
    """Every sentence of the English translation language, sorted."""
    return sorted(s.en for s in _grammar().values() if s.fr is not None)


def is_english_sentence(s: str) -> bool:
    """True for a member of the translation language or of the sentiment language."""
    return _normalize(s) in _grammar()


def sentiment_label(s: str) -> str:
    """The gold sentiment label of a member of either language (see module docstring).

    Raises KeyError for any other text.
    """
    sentence = _grammar().get(_normalize(s))
    if sentence is None:
        raise KeyError(f"not a sentence of the corpus: {s!r}")
    return sentence.label


# -------------------------------------------------------------------------- held-out


def _combos_of(en: str) -> frozenset[tuple[str, str, str]]:
    return _grammar()[en].combos


def _protected() -> set[tuple[str, str, str]]:
    sentences = [en for en, _ in LECTURE_PAIRS] + list(_PROTECTED_EXAMPLES)
    return set().union(*(_combos_of(en) for en in sentences))


def _pick(rng, candidates, k: int, allowed) -> set[tuple[str, str, str]]:
    """Up to ``k`` of the shuffled ``candidates``, taking each one only if the set with it
    is still ``allowed(...)``."""
    candidates = sorted(candidates)
    rng.shuffle(candidates)
    chosen: set[tuple[str, str, str]] = set()
    for combo in candidates:
        if len(chosen) < k and allowed(chosen | {combo}):
            chosen.add(combo)
    return chosen


def _max_uses(combos, max_x: int, max_y: int) -> bool:
    """No word is used more than ``max_x`` times as x, ``max_y`` times as y."""
    xs = Counter(x for _, x, _ in combos)
    ys = Counter(y for _, _, y in combos)
    return max(xs.values(), default=0) <= max_x and max(ys.values(), default=0) <= max_y


def _enough_adjectives_left(held_combos) -> bool:
    """Training keeps every adjective with >= 2 nouns of each gender, every noun with
    >= 3 adjectives."""
    held = {(a, n) for kind, a, n in held_combos if kind == "adj"}
    for adj, nouns in ADJECTIVE_NOUNS.items():
        for gender in "mf":
            left = [n for n in nouns if NOUNS[n][1] == gender and (adj, n) not in held]
            if len(left) < 2:
                return False
    for noun in NOUNS:
        if len([a for a in _adjective_choices(noun)[1:] if (a, noun) not in held]) < 3:
            return False
    return True


@lru_cache(maxsize=8)
def heldout_combinations(seed: int = 0) -> frozenset[tuple[str, str, str]]:
    """The word combinations held out of training for ``seed``.

    Each is a tuple ``(kind, x, y)``:

    * ``("adj", adjective, noun)``: "the black cat", "the cat was black", in any position.
      12 over the translation lexicon, at most 2 per adjective and 1 per noun, and only
      while training keeps every adjective with 2 nouns of each gender and every noun with
      3 adjectives. 32 more over the sentiment subjects (not "book", which is both).
    * ``("pair", noun, noun)``: the two nouns of a transitive sentence, in either order
      (sorted). 10, each noun in at most 2.
    * ``("pref", verb, thing)``: "i love cheese", "we do not love cheese". 6.

    The combinations of ``LECTURE_PAIRS`` and of a few example sentences are never picked.
    """
    rng = random.Random(seed)
    protected = _protected()
    noun_adjs = {("adj", a, n) for a, nouns in ADJECTIVE_NOUNS.items() for n in nouns}
    transitive = [s for s in _grammar().values() if s.family == "transitive"]
    pairs = {c for s in transitive for c in s.combos if c[0] == "pair"}
    subjects = [s for s in SENTIMENT_SUBJECTS if s not in NOUNS]
    subject_adjs = {("adj", a, s) for a in _POLARITY for s in subjects}
    preferences = {("pref", v, t) for v in PREFERENCE_VERBS for t in THINGS}

    def each_noun_at_most_twice(chosen) -> bool:
        return max(Counter(w for _, a, b in chosen for w in (a, b)).values()) <= 2

    def adjs_ok(chosen) -> bool:
        return _max_uses(chosen, 2, 1) and _enough_adjectives_left(chosen)

    return frozenset().union(
        _pick(rng, noun_adjs - protected, 12, adjs_ok),
        _pick(rng, pairs - protected, 10, each_noun_at_most_twice),
        _pick(rng, subject_adjs - protected, 32, lambda chosen: _max_uses(chosen, 2, 3)),
        _pick(rng, preferences - protected, 6, lambda chosen: _max_uses(chosen, 2, 1)),
    )


# ---------------------------------------------------------------------------- splits

VALIDATION_FRACTION = 0.05
_NO_VALIDATION = ("politeness",)  # too few fixed phrases to spare any

# How often each family is drawn, per task ("lecture" = the 8 LECTURE_PAIRS sentences,
# drawn on top of their own families so that they are seen hundreds of times).
_TRANSLATION_MIX = {"lecture": 0.05, "transitive": 0.70, "sat": 0.10, "went": 0.05,
                    "preference": 0.08, "politeness": 0.02}  # fmt: skip
_SENTIMENT_MIX = {"judgement": 0.62, "preference": 0.15, "transitive": 0.12, "sat": 0.05,
                  "went": 0.04, "politeness": 0.02}  # fmt: skip
_LM_MIX = {"lecture": 0.03, "transitive": 0.45, "sat": 0.07, "went": 0.04, "preference": 0.06,
           "politeness": 0.02, "judgement": 0.33}  # fmt: skip


_SPLIT_NAMES = ("train", "validation", "heldout")


@dataclass(frozen=True)
class Split:
    """Train (sampled with replacement), validation and held-out (distinct) examples."""

    train: list
    validation: list
    heldout: list


@lru_cache(maxsize=8)
def _partition(seed: int) -> dict[str, dict[str, list[str]]]:
    """family -> {"train", "validation", "heldout"} -> English sentences (pools, no repeats).

    Shared by every task: a sentence is in exactly one pool for a given seed.
    """
    heldout_combos = heldout_combinations(seed)
    lecture = [en for en, _ in LECTURE_PAIRS]
    rng = random.Random(f"{seed}:validation")
    families: dict[str, list[_Sentence]] = defaultdict(list)
    for sentence in _grammar().values():
        families[sentence.family].append(sentence)
    pools = {"lecture": {"train": lecture, "validation": [], "heldout": []}}
    for family, sentences in families.items():
        heldout = [s.en for s in sentences if s.combos & heldout_combos]
        rest = [s.en for s in sentences if not s.combos & heldout_combos]
        eligible = [] if family in _NO_VALIDATION else [en for en in rest if en not in lecture]
        validation = set(rng.sample(eligible, round(len(eligible) * VALIDATION_FRACTION)))
        train = [en for en in rest if en not in validation]
        pools[family] = {"train": train, "validation": sorted(validation), "heldout": heldout}
    return pools


def _draw_distinct(pools: dict[str, list[str]], mix: dict[str, float], n: int, rng) -> list[str]:
    """Draw ``n`` distinct sentences, families in proportion to ``mix`` while they last."""
    queues = {f: rng.sample(pools[f], len(pools[f])) for f in mix if pools[f]}
    out: list[str] = []
    while len(out) < n and queues:
        families = list(queues)
        family = rng.choices(families, weights=[mix[f] for f in families])[0]
        out.append(queues[family].pop())
        if not queues[family]:
            del queues[family]
    return out


def _sample(seed: int, task: str, mix: dict[str, float], n_train, n_val, n_heldout) -> Split:
    """English sentences of one task: train with replacement, validation/held-out without."""
    pools = _partition(seed)
    rng = random.Random(f"{seed}:{task}")
    families = [f for f in mix if pools[f]["train"]]
    picks = rng.choices(families, weights=[mix[f] for f in families], k=n_train)
    train = [rng.choice(pools[f]["train"]) for f in picks]
    validation = _draw_distinct({f: pools[f]["validation"] for f in mix}, mix, n_val, rng)
    heldout = _draw_distinct({f: pools[f]["heldout"] for f in mix}, mix, n_heldout, rng)
    return Split(train, validation, heldout)


def translation_splits(
    seed: int = 0, n_train: int = 40000, n_val: int = 1000, n_heldout: int = 1000
) -> Split:
    """English -> French pairs ``(en, fr)`` for the seq2seq model."""
    split = _sample(seed, "translation", _TRANSLATION_MIX, n_train, n_val, n_heldout)
    return Split(*([(en, translate(en)) for en in part] for part in _parts(split)))


def sentiment_splits(
    seed: int = 0, n_train: int = 30000, n_val: int = 1000, n_heldout: int = 1000
) -> Split:
    """``(text, label)`` pairs for the classifier head, label in SENTIMENT_LABELS."""
    split = _sample(seed, "sentiment", _SENTIMENT_MIX, n_train, n_val, n_heldout)
    return Split(*([(en, sentiment_label(en)) for en in part] for part in _parts(split)))


def lm_sentences(
    seed: int = 0, n_train: int = 60000, n_val: int = 1000, n_heldout: int = 1000
) -> Split:
    """English sentences of both languages for language modelling (next token, MLM)."""
    return _sample(seed, "lm", _LM_MIX, n_train, n_val, n_heldout)


def _parts(split: Split) -> list[list]:
    return [getattr(split, name) for name in _SPLIT_NAMES]


def write_splits(out_dir: Path, seed: int = 0) -> None:
    """Write ``out_dir/{translation,sentiment,lm}/{train,validation,heldout}.jsonl``.

    One JSON object a line: ``{"en", "fr"}``, ``{"text", "label"}`` and ``{"text"}``.
    """
    tasks = {
        "translation": (translation_splits(seed), lambda ex: {"en": ex[0], "fr": ex[1]}),
        "sentiment": (sentiment_splits(seed), lambda ex: {"text": ex[0], "label": ex[1]}),
        "lm": (lm_sentences(seed), lambda ex: {"text": ex}),
    }
    for task, (split, to_json) in tasks.items():
        folder = Path(out_dir) / task
        folder.mkdir(parents=True, exist_ok=True)
        for name in _SPLIT_NAMES:
            examples = getattr(split, name)
            lines = (json.dumps(to_json(ex), ensure_ascii=False) + "\n" for ex in examples)
            (folder / f"{name}.jsonl").write_text("".join(lines), encoding="utf-8")


# ------------------------------------------------------------------------- role swap
#: nouns the grammar never makes a subject (only animate nouns act), so no model ever read
#: "the cheese ..." at the start of a sentence in training
NEVER_SUBJECTS = tuple(n for n in NOUNS if n not in ANIMATE)


def role_swap_pairs(seed: int = 0, per_noun: int = 10) -> list[tuple[str, str]]:
    """English -> French pairs that put a noun in a role it never had in training: a
    transitive sentence whose subject is one of ``NEVER_SUBJECTS`` ("the white cheese saw
    the cat" -> "le fromage blanc a vu le chat"), ``per_noun`` for each, with any verb, an
    object it accepts and the adjectives each noun may take, and none of the combinations
    held out for ``seed``: the role is the one thing training never showed. Outside the
    grammar (so outside every split), translated by its rules (``_french_np``). Seeded."""
    rng = random.Random(f"{seed}:role-swap")
    held = heldout_combinations(seed)
    out: dict[str, str] = {}
    for subj in NEVER_SUBJECTS:
        made = 0
        while made < per_noun:
            verb = rng.choice(sorted(VERBS))
            verb_fr, objects = VERBS[verb]
            obj = rng.choice([o for o in objects if o != subj])
            a1, a2 = rng.choice(_adjective_choices(subj)), rng.choice(_adjective_choices(obj))
            en = f"{_english_np(subj, a1)} {verb} {_english_np(obj, a2)}"
            combos = _adj_combo(a1, subj) | _adj_combo(a2, obj) | {_pair_combo(subj, obj)}
            if en in out or combos & held:
                continue
            out[en] = f"{_french_np(subj, a1)} {verb_fr} {_french_np(obj, a2)}"
            made += 1
    assert not any(en in _grammar() for en in out)
    return list(out.items())
