"""The grammar: lecture sentences, French rules, labels, and held-out splits that really
hold combinations out of training."""

import hashlib
import inspect
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path

import pytest

from training import corpus

ROOT = Path(__file__).resolve().parents[2]
SPLITS = ("train", "validation", "heldout")

EXPECTED_LECTURE_PAIRS = [
    ("the black cat ate the mouse", "le chat noir a mangé la souris"),
    ("i love machine learning", "j'aime l'apprentissage automatique"),
    ("you are welcome", "de rien"),
    ("the cat sat on the mat", "le chat s'est assis sur le tapis"),
    ("the dog bites the man", "le chien mord l'homme"),
    ("the man bites the dog", "l'homme mord le chien"),
    ("the bear ate the honey", "l'ours a mangé le miel"),
    ("i went to the store", "je suis allé au magasin"),
]


@pytest.fixture(scope="module")
def splits():
    """The default splits of every task, as English sentences."""
    tr = corpus.translation_splits(seed=0)
    se = corpus.sentiment_splits(seed=0)
    lm = corpus.lm_sentences(seed=0)
    return {
        "translation": {k: [en for en, _ in getattr(tr, k)] for k in SPLITS},
        "sentiment": {k: [en for en, _ in getattr(se, k)] for k in SPLITS},
        "lm": {k: list(getattr(lm, k)) for k in SPLITS},
    }


def parse_combinations(en: str) -> set[tuple[str, str, str]]:
    """Read the word combinations of a sentence from its words, independently of how the
    grammar generated it (same tuples as corpus.heldout_combinations)."""
    words = en.split()
    found = set()
    for a, n in pairwise(words):  # attributive: "the black cat"
        if a in corpus.ADJECTIVES and n in corpus.NOUNS:
            found.add(("adj", a, n))
    if len(words) >= 4 and words[2] in ("was", "is"):  # predicative: "the movie was not good"
        found.add(("adj", words[-1], words[1]))
    if any(w in corpus.VERBS for w in words):  # transitive: the two nouns, either order
        nouns = [w for w in words if w in corpus.NOUNS]
        assert len(nouns) == 2, en
        found.add(("pair", *sorted(nouns)))
    if words[0] in ("i", "we"):  # "i do not love machine learning"
        rest = words[3:] if words[1:3] == ["do", "not"] else words[1:]
        if rest[0] in corpus.PREFERENCE_VERBS:
            found.add(("pref", rest[0], " ".join(rest[1:])))
    return found


def test_lecture_pairs_are_exactly_those_of_the_design():
    assert corpus.LECTURE_PAIRS == EXPECTED_LECTURE_PAIRS
    for en, fr in EXPECTED_LECTURE_PAIRS:
        assert corpus.is_english_sentence(en)
        assert en in corpus.english_sentences()
        assert corpus.translate(en) == fr


@pytest.mark.parametrize(
    ("en", "fr"),
    [
        ("the young man saw the white bird", "le jeune homme a vu l'oiseau blanc"),
        ("the happy girl found the green apple", "la fille heureuse a trouvé la pomme verte"),
        ("the small bird sees the big bear", "le petit oiseau voit le grand ours"),
        ("the bear liked the small mouse", "l'ours a aimé la petite souris"),
        ("the white mouse ate the cheese", "la souris blanche a mangé le fromage"),
        ("the happy woman found the black car", "la femme heureuse a trouvé la voiture noire"),
        ("the boy sees the happy bear", "le garçon voit l'ours heureux"),
        ("the dog saw the white house", "le chien a vu la maison blanche"),
        ("the young woman sat on the chair", "la jeune femme s'est assise sur la chaise"),
        ("the bird sat on the grass", "l'oiseau s'est assis sur l'herbe"),
        ("she went to the school", "elle est allée à l'école"),
        ("we went to the park yesterday", "nous sommes allés au parc hier"),
        ("he went to the house", "il est allé à la maison"),
        ("i like cheese", "j'aime bien le fromage"),
        ("i hate winter", "je déteste l'hiver"),
        ("i do not like music", "je n'aime pas la musique"),
        ("we do not hate cats", "nous ne détestons pas les chats"),
        ("thank you", "merci"),
        ("good night", "bonne nuit"),
    ],
)
def test_french_agreement_placement_and_elision(en, fr):
    assert corpus.translate(en) == fr


def test_translate_normalises_case_and_spaces_and_rejects_non_members():
    assert corpus.translate("  The Cat sat on  the MAT ") == "le chat s'est assis sur le tapis"
    for text in ["the cat flew", "the cat ate the cat", "the red man saw the dog", ""]:
        with pytest.raises(KeyError):
            corpus.translate(text)
    with pytest.raises(KeyError):  # sentiment only
        corpus.translate("the movie was good")
    assert corpus.is_english_sentence("the movie was good")
    assert not corpus.is_english_sentence("the movie was purple")


def test_the_language_is_finite_sorted_and_well_formed():
    sentences = corpus.english_sentences()
    assert sentences == sorted(set(sentences))
    assert 20_000 < len(sentences) < 100_000
    unelided = re.compile(r"(^| )(le|la) [aeiouéhô]")
    for en in sentences:
        assert en == " ".join(en.lower().split()) and en[-1].isalpha(), en
        fr = corpus.translate(en)
        assert fr == " ".join(fr.split()) and not unelided.search(fr), (en, fr)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("the movie was good", "positive"),
        ("the movie was not good", "negative"),
        ("the food was bad", "negative"),
        ("the food was not bad", "positive"),
        ("this song is really great", "positive"),
        ("the weather was not very nice", "negative"),
        ("the movie was long", "neutral"),
        ("the movie was not long", "neutral"),
        ("the book was red", "neutral"),
        ("i love machine learning", "positive"),
        ("i hate cheese", "negative"),
        ("i do not like music", "negative"),
        ("we do not hate cats", "positive"),
        ("the black cat ate the mouse", "neutral"),
        ("you are welcome", "neutral"),
    ],
)
def test_sentiment_labels_and_negation(text, label):
    assert corpus.sentiment_label(text) == label


def test_sentiment_label_rejects_non_members():
    with pytest.raises(KeyError):
        corpus.sentiment_label("hello world")


def test_place_nouns_fill_the_went_to_sentence():
    assert {"store", "park", "school", "house"} <= corpus.PLACE_NOUNS
    for place in corpus.PLACE_NOUNS:
        assert corpus.is_english_sentence(f"i went to the {place}")


def _digest(seed: int) -> str:
    parts = [
        corpus.translation_splits(seed, 500, 50, 50),
        corpus.sentiment_splits(seed, 500, 50, 50),
    ]
    parts.append(corpus.lm_sentences(seed, 500, 50, 50))
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def test_splits_are_deterministic_for_a_seed_even_across_processes():
    assert _digest(1) == _digest(1)
    assert _digest(1) != _digest(2)
    assert corpus.heldout_combinations(1) != corpus.heldout_combinations(2)
    # str hashing differs between processes: a set iterated somewhere would show here
    code = "\n".join(["import hashlib", "from training import corpus", inspect.getsource(_digest)])
    code += "\nprint(_digest(1))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True)
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().strip() == _digest(1)


def test_split_sizes(splits):
    for task, parts in splits.items():
        assert len(parts["validation"]) == 1000, task
        assert len(parts["heldout"]) == 1000, task
        assert len(set(parts["validation"])) == len(set(parts["heldout"])) == 1000, task
    assert len(splits["translation"]["train"]) == 40000


def test_splits_are_disjoint_within_and_across_tasks(splits):
    train = {en for parts in splits.values() for en in parts["train"]}
    validation = {en for parts in splits.values() for en in parts["validation"]}
    heldout = {en for parts in splits.values() for en in parts["heldout"]}
    assert not train & validation
    assert not train & heldout
    assert not validation & heldout


def test_no_heldout_combination_is_ever_trained_on(splits):
    held = corpus.heldout_combinations(0)
    assert {kind for kind, _, _ in held} == {"adj", "pair", "pref"}
    for task, parts in splits.items():
        for en in set(parts["train"]) | set(parts["validation"]):
            assert not parse_combinations(en) & held, (task, en)
        for en in parts["heldout"]:
            assert parse_combinations(en) & held, (task, en)
    # both kinds of translation generalisation are measured, negated sentiment too
    tr_kinds = Counter(
        c[0] for en in splits["translation"]["heldout"] for c in parse_combinations(en) & held
    )
    assert tr_kinds["adj"] > 100 and tr_kinds["pair"] > 100
    assert any(" not " in en for en in splits["sentiment"]["heldout"])


def test_training_sees_every_adjective_with_both_genders_and_every_noun_with_many(splits):
    genders = defaultdict(set)
    adjectives = defaultdict(set)
    for en in splits["translation"]["train"]:
        for kind, adj, noun in parse_combinations(en):
            if kind == "adj" and noun in corpus.NOUNS:
                genders[adj].add(corpus.NOUNS[noun][1])
                adjectives[noun].add(adj)
    assert all(genders[adj] == {"m", "f"} for adj in corpus.ADJECTIVES), dict(genders)
    assert all(len(adjectives[noun]) >= 3 for noun in corpus.NOUNS), dict(adjectives)


def test_lecture_sentences_are_trained_on_often_and_never_held_out(splits):
    held = corpus.heldout_combinations(0)
    counts = Counter(splits["translation"]["train"])
    lm_counts = Counter(splits["lm"]["train"])
    for en, _ in corpus.LECTURE_PAIRS:
        assert counts[en] >= 100 and lm_counts[en] >= 50, en
        assert not parse_combinations(en) & held
    assert counts["i love machine learning"] > 0
    assert Counter(splits["sentiment"]["train"])["i love machine learning"] > 0


def test_sentiment_train_has_every_label_often():
    labels = Counter(label for _, label in corpus.sentiment_splits(0).train)
    assert set(labels) == set(corpus.SENTIMENT_LABELS)
    assert min(labels.values()) > 0.2 * sum(labels.values())


def test_write_splits(tmp_path):
    corpus.write_splits(tmp_path, seed=0)
    first = json.loads((tmp_path / "translation" / "train.jsonl").open().readline())
    assert corpus.translate(first["en"]) == first["fr"]
    lines = (tmp_path / "sentiment" / "heldout.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1000 and set(json.loads(lines[0])) == {"text", "label"}
    assert (tmp_path / "lm" / "validation.jsonl").exists()


def test_role_swap_pairs_put_only_the_role_out_of_training():
    """Each noun that is never a subject, as the subject; nothing else unseen (no held-out
    combination); French by the grammar's own rules."""
    pairs = corpus.role_swap_pairs(0)
    assert pairs == corpus.role_swap_pairs(0) and len(dict(pairs)) == len(pairs) == 60
    held = corpus.heldout_combinations(0)
    subjects = Counter()
    for en, fr in pairs:
        words = en.split()
        verb = next(w for w in words if w in corpus.VERBS)
        (a1, subject), (a2, obj) = (
            (np[-2] if len(np) == 3 else None, np[-1])
            for np in (words[: words.index(verb)], words[words.index(verb) + 1 :])
        )
        combos = {("pair", *sorted((subject, obj)))}
        combos |= {("adj", a, n) for a, n in ((a1, subject), (a2, obj)) if a}
        subjects[subject] += 1
        assert subject not in corpus.ANIMATE and not corpus.is_english_sentence(en)
        assert not combos & held, en
        assert corpus.NOUNS[subject][0] in fr.split()[:3], fr  # the French subject too
    assert subjects == dict.fromkeys(corpus.NEVER_SUBJECTS, 10)
    assert dict(pairs)["the black cheese bites the boy"] == "le fromage noir mord le garçon"
