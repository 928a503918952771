"""Chunk boundaries: sentences, sections, sizes, offsets, overlap, pages."""

import re

import pytest

from conftest import REPORTS
from rag.ingest.chunking import Chunker, heading_level
from rag.ingest.cleaning import clean
from rag.ingest.loaders import load_document
from rag.text.tokens import count_tokens

SENTENCE_END = re.compile(r"[。！？；!?;”」』)）]$")


def cleaned(name):
    return clean(load_document(REPORTS / name)).text


@pytest.mark.parametrize("name", sorted(p.name for p in REPORTS.glob("*.txt")))
def test_chunks_of_bundled_reports(name):
    text = cleaned(name)
    chunks = Chunker(max_tokens=300).run(text)
    assert 10 <= len(chunks) <= 60
    covered = set()
    for c in chunks:
        assert c.text == text[c.start:c.end]  # offsets point at the stored characters
        assert count_tokens(c.text) <= 300 * 1.2
        # Chunks end at a sentence end or a line end, never mid-sentence.
        if not (SENTENCE_END.search(c.text) or c.end == len(text) or text[c.end] == "\n"):
            # ...unless that one sentence alone exceeds the limit.
            begin = max(text.rfind(p, 0, c.end) for p in "。；\n") + 1
            finish = min(i for i in (text.find(p, c.end) for p in "。；\n") if i >= 0)
            assert count_tokens(text[begin:finish + 1]) > 300, c.text[-20:]
        # Headings may open a chunk but never follow body text in it: chunks do not cross
        # sections. (Short unpunctuated lines are headings whose numeral was lost.)
        lines = c.text.split("\n")
        for i, line in enumerate(lines[1:], 1):
            if heading_level(line) in (1, 2):
                assert all(heading_level(l) or (len(l) < 60 and not SENTENCE_END.search(l))
                           for l in lines[:i]), c.text[:200]
        covered.update(range(c.start, c.end))
    # Every non-space character of the report is in some chunk.
    missing = [i for i in range(len(text)) if i not in covered and not text[i].isspace()]
    assert not missing, text[missing[0]:missing[0] + 30]


def test_section_paths_follow_headings():
    chunks = Chunker(300).run(cleaned("houma-2023.txt"))
    by_text = {c.section_path for c in chunks}
    assert "一、主要工作举措和成效 > (一)坚持政治引领,全面强化党对法治政府建设的领导" in by_text
    assert any(p.startswith("三、下一年度工作计划") for p in by_text)
    target = next(c for c in chunks if "调解成功率100%" in c.text)
    assert target.section == "(五)坚持多措并举,全面有效化解社会矛盾纠纷"
    # Taicang: 1. headings inside 一、 sections, in traditional characters as written.
    taicang = Chunker(300).run(cleaned("taicang-2024.txt"))
    assert any(c.section_path == "四、聚焦糾紛化解,全力維護社會大局穩定 > 1.強化行政復議應訴工作質效。" for c in taicang)


def test_lost_heading_numeral_is_still_a_section():
    # Taiyuan's saved page lost the numerals of 一、 and 二、.
    paths = {c.section_path.split(" > ")[0] for c in Chunker(300).run(cleaned("taiyuan-2024.txt"))}
    assert "、坚持党的全面领导,确保法治政府建设始终沿着正确方向推进" in paths
    assert "持续巩固深化全国法治政府建设示范市创建成果,加速推进法治政府建设取得全面突破" in paths


def test_one_sentence_overlap_within_a_section():
    text = "一、标题\n" + "".join(f"第{i}句话讲述了一项具体的工作内容和成效。" for i in range(40))
    chunks = Chunker(max_tokens=80).run(text)
    assert len(chunks) > 3
    for a, b in zip(chunks, chunks[1:]):
        last_sentence = re.findall(r"[^。]*。", a.text)[-1]
        assert b.text.startswith(last_sentence)
        assert b.start < a.end  # overlap in offsets too
    assert Chunker(max_tokens=80, overlap_sentences=0).run(text)[1].start >= chunks[0].end


def test_no_overlap_across_sections():
    text = "一、甲\n" + "甲的工作很多。" * 5 + "\n二、乙\n" + "乙的工作也很多。" * 5
    chunks = Chunker(max_tokens=300).run(text)
    assert [c.section for c in chunks] == ["一、甲", "二、乙"]
    assert "甲" not in chunks[1].text


def test_a_sentence_longer_than_the_limit_is_split_at_commas():
    long_sentence = "，".join(f"第{i}项措施落实到位" for i in range(120)) + "。"
    chunks = Chunker(max_tokens=60).run("短句一。" + long_sentence + "短句二。")
    assert len(chunks) > 3
    assert all(count_tokens(c.text) <= 60 * 1.2 for c in chunks)
    assert "".join(c.text for c in chunks).count("第119项") >= 1


def test_item_markers_start_new_chunks_once_half_full():
    body = "".join(f"{n}是推进第{n}项重点工作。" + "具体措施包括加强统筹协调和督促检查。" * 3
                   for n in "一二三四")
    chunks = Chunker(max_tokens=150).run("一、工作\n" + body)
    # Two items would fit in 150 tokens, but each chunk starts at an item once half full.
    assert [c.text.removeprefix("一、工作\n")[:2] for c in chunks] == ["一是", "二是", "三是", "四是"]


def test_page_numbers_from_page_starts():
    text = "第一页的内容。" * 30 + "\n" + "第二页的内容。" * 30
    page_starts = [0, text.index("第二页")]
    chunks = Chunker(max_tokens=60).run(text, page_starts)
    assert chunks[0].page == 1 and chunks[-1].page == 2
    for c in chunks:
        assert c.page == (1 if c.start < page_starts[1] else 2)
        assert c.page_end >= c.page


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_tokens"):
        Chunker(max_tokens=5)
    with pytest.raises(ValueError, match="overlap"):
        Chunker(overlap_sentences=-1)
