import json

import pytest

from fireact_eval.errors import FireactError
from fireact_eval.qa_data import DEMO_QUESTIONS
from fireact_eval.tools import make_search
from fireact_eval.tools.local_search import NO_RESULT, LocalSearch, hotpotqa_passages, write_corpus

from conftest import SHARED


def test_demo_corpus_supports_every_demo_question():
    search = make_search("local")
    rows = [json.loads(line) for line in DEMO_QUESTIONS.read_text().splitlines()]
    assert len(rows) >= 30
    titles = [title for row in rows for title in row["supporting"]]
    assert all(title in search(title) for title in titles)
    # BM25 favours short passages, so a few titles return a neighbour that names them
    own = sum(search(title).startswith(f"{title}:") for title in titles)
    assert own / len(titles) > 0.9


def test_finds_passage_from_a_question_like_query():
    assert "Kettwick" in make_search("local")("where was Ilse Brandauer born")


def test_no_match_and_empty_query():
    search = make_search("local")
    assert search("zzzyzx qqqwv") == NO_RESULT
    assert search("the of and") == NO_RESULT  # stopwords only


def test_index_is_cached_on_disk_and_reused(tmp_path, _isolated_cache):
    corpus = tmp_path / "c.jsonl"
    rows = [{"title": "A", "text": "alpha beta"}, {"title": "B", "text": "gamma delta"}]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    first = LocalSearch(corpus)
    assert first.index_dir.parent == _isolated_cache / "bm25"
    stamp = (first.index_dir / "params.index.json").stat().st_mtime_ns
    again = LocalSearch(corpus)
    assert again("gamma") == "B: gamma delta"
    assert again.index_dir == first.index_dir
    assert (again.index_dir / "params.index.json").stat().st_mtime_ns == stamp  # not rebuilt


def test_trims_long_passages(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"title": "", "text": "word " * 500}) + "\n")
    out = LocalSearch(corpus, max_chars=50)("word")
    assert len(out) <= 54 and out.endswith(" ...")


def test_bad_corpus_row_names_file_and_line(tmp_path):
    corpus = tmp_path / "bad.jsonl"
    corpus.write_text('{"title": "A", "text": "ok"}\n{"title": "B"}\n')
    with pytest.raises(FireactError, match=r"bad\.jsonl, line 2"):
        LocalSearch(corpus)


def test_missing_corpus_and_unknown_spec(tmp_path):
    with pytest.raises(FireactError, match="not found"):
        make_search(f"local:{tmp_path}/nope.jsonl")
    with pytest.raises(FireactError, match="valid backends: local"):
        make_search("bing")


SQUAD = SHARED / "data" / "wiki-squad" / "squaddev_v1.1.json"


@pytest.mark.skipif(not SQUAD.is_file(), reason="../shared wiki-squad data not present")
def test_real_wikipedia_retrieval_quality(tmp_path):
    """Index real Wikipedia paragraphs, ask their SQuAD questions: gold passage ranks first."""
    data = json.loads(SQUAD.read_text())["data"]
    corpus, questions = tmp_path / "wiki.jsonl", []
    with corpus.open("w") as fh:
        for article in data:
            for para in article["paragraphs"]:
                fh.write(json.dumps({"title": article["title"], "text": para["context"]}) + "\n")
                questions += [(q["question"], para["context"][:200]) for q in para["qas"][:1]]
    search = LocalSearch(corpus, max_chars=10_000)
    hits = sum(gold in search(q) for q, gold in questions)
    assert len(questions) > 1000
    assert hits / len(questions) > 0.6


def test_spec_options(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"title": "T", "text": "alpha " * 100}) + "\n")
    assert len(make_search(f"local:{corpus}?max_chars=40")("alpha")) <= 44
    with pytest.raises(FireactError, match="valid: max_chars"):
        make_search(f"local:{corpus}?k=3")


def test_hotpotqa_context_paragraphs_become_a_corpus(tmp_path):
    """The Hub schema of hotpotqa/hotpot_qa: context = {title: [...], sentences: [[...]]}."""
    rows = [
        {"context": {"title": ["Badr Hari", "K-1"],
                     "sentences": [["Badr Hari is a kickboxer.", " He was born in 1984."],
                                   ["K-1 is a kickboxing promotion."]]}},
        {"context": {"title": ["K-1"], "sentences": [["K-1 is a kickboxing promotion."]]}},
    ]
    out = tmp_path / "hotpot.jsonl"
    assert write_corpus(hotpotqa_passages(rows), out) == 2
    assert LocalSearch(out)("when was Badr Hari born") == (
        "Badr Hari: Badr Hari is a kickboxer. He was born in 1984.")


def test_corpus_with_no_searchable_word_finds_nothing(tmp_path):
    """Only stopwords and one-letter words: no index to build, every query finds nothing."""
    from fireact_eval.tools.local_search import NO_RESULT, LocalSearch

    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"title": "", "text": "X is Y."}\n')
    assert LocalSearch(corpus)("X") == NO_RESULT
