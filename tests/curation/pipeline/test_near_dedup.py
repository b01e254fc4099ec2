"""MinHash near-dup: CJK shingling, verification, the kept sample, reference batches, conflicting answers."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa

from curation.dedup import minhash_clusters
from curation.dedup.minhash import MinHashParams, optimal_bands, shingles_query
from curation.ingest import ingest_paths
from curation.pipeline.executor import run_pipeline
from curation.store import Store
from schemas.pipeline import PipelineConfig, StepConfig

EN = (
    "Binary search finds an item in a sorted list by comparing the target with the middle element and "
    "discarding the half that cannot contain it, repeating until the item is found or the list is empty."
)
ZH = "二分查找在有序列表中查找元素：每次把目标与中间元素比较，舍弃不可能包含目标的那一半，直到找到元素或列表为空为止。"


def _shingles(text: str, p: MinHashParams) -> list[int]:
    con = duckdb.connect()
    con.register("t", pa.table({"text": [text]}))
    return con.execute(
        f"SELECT shingles FROM ({shingles_query('t', 'text', p, chr(39) + 'k' + chr(39))})"
    ).fetchall()[0][0]


def test_chinese_is_shingled_by_characters_english_by_words() -> None:
    p = MinHashParams()
    # 3-grams of words: a 10-word sentence has 8; of characters: a 10-character Chinese text has 8
    assert len(_shingles("one two three four five six seven eight nine ten", p)) == 8
    assert len(_shingles("一二三四五六七八九十", p)) == 8
    # a word tokenizer would see one token in Chinese text: a single shingle
    assert len(_shingles(ZH, p)) > 40


def test_near_copies_cluster_in_both_languages_and_unrelated_texts_do_not() -> None:
    en_copy = EN.replace("middle element", "central element").replace(
        "repeating", "and repeats"
    )
    zh_copy = ZH.replace("中间元素", "中央元素").replace("直到", "一直到")
    ids = minhash_clusters(
        [
            EN,
            en_copy,
            ZH,
            zh_copy,
            "Photosynthesis turns light into chemical energy in plants.",
            "光合作用把光能转化为植物中的化学能。",
        ]
    )
    assert ids[0] == ids[1] and ids[2] == ids[3]
    assert len({ids[0], ids[2], ids[4], ids[5]}) == 4


# Short Chinese texts (a quatrain of 28 characters, a saying of 15), written after the real poems and sayings of the
# near-dedup benchmark's short-text section: one character changed and one inserted is still a copy; another poem
# that shares a whole line, or a saying built on the same pattern, is not.
POEM = "春眠初醒听鸟鸣，夜来风雨落花轻。小园门外行人少，一树新枝映水明。"
POEM_COPY = "春眠初醒听鸟鸣，夜来风雨落花轻。小园门外行人稀，一树新绿枝映水明。"
POEM_SAME_LINE = "小园门外行人少，独坐窗前看月明。江上渔舟归去晚，满城灯火照归程。"
SAYING = "读书如春起之苗，不见其长，日有所增。"
SAYING_COPY = "读书如春起之苗，不见其长，日有所增进。"
SAYING_SAME_PATTERN = "懒读如磨刀之石，不见其损，日有所亏。"


def test_short_chinese_near_copies_cluster_and_different_short_texts_do_not() -> None:
    texts = [POEM, POEM_COPY, POEM_SAME_LINE, SAYING, SAYING_COPY, SAYING_SAME_PATTERN]
    for threshold in (0.5, 0.6):
        ids = minhash_clusters(texts, threshold=threshold)
        assert ids[1] == ids[0] and ids[4] == ids[3]
        assert len({ids[0], ids[2], ids[3], ids[5]}) == 4


def test_short_chinese_text_keeps_character_3_grams() -> None:
    # the n-gram size does not depend on the length: a copy one character longer or shorter is shingled alike
    # (a size switched at some length would make a pair across it share nothing)
    p = MinHashParams()
    assert len(_shingles(SAYING, p)) == 15 - 2
    assert len(set(_shingles(SAYING, p)) & set(_shingles(SAYING_COPY, p))) == 13


def test_candidates_are_verified_by_true_jaccard() -> None:
    # 2 distinct shingles out of ~30 shared: the band keys may collide only by accident, never the verification
    a = " ".join(f"w{i}" for i in range(30))
    b = (
        " ".join(f"w{i}" for i in range(15))
        + " "
        + " ".join(f"x{i}" for i in range(15))
    )  # Jaccard about 0.3
    assert minhash_clusters([a, b], threshold=0.6) == [0, 1]
    assert minhash_clusters([a, b], threshold=0.25)[1] == 0


def test_bands_follow_the_threshold_like_datasketch() -> None:
    assert optimal_bands(0.7, 128) == (
        14,
        9,
    )  # datasketch's MinHashLSH(threshold=0.7, num_perm=128)
    assert optimal_bands(0.5, 128) == (25, 5)


def _store_with(tmp_path: Path, name: str, rows: list[dict]) -> Store:
    store = Store(tmp_path / "curate.duckdb")
    src = tmp_path / name
    src.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
        encoding="utf-8",
    )
    ingest_paths(store, [str(src)])
    return store


def _decisions(store: Store) -> dict[str, tuple[str, str, str]]:
    with store.reader() as con:
        rows = con.execute("""SELECT s.external_id, d.verdict, d.reason, r.external_id FROM decisions d
                              JOIN samples s USING (sample_id) LEFT JOIN samples r ON r.sample_id = d.ref_sample_id
                              WHERE d.step = 'near_dedup'""").fetchall()
    return {a: (v, why, ref) for a, v, why, ref in rows}


def test_the_best_copy_is_kept_and_the_others_name_it(tmp_path) -> None:
    rows = [
        {"id": "a", "instruction": "Explain binary search.", "output": EN},
        {
            "id": "b",
            "instruction": "Explain binary search.",
            "output": EN.replace("middle", "central"),
        },
        {
            "id": "c",
            "instruction": "Explain binary search.",
            "output": EN.replace("empty", "exhausted"),
        },
        {
            "id": "u",
            "instruction": "What is photosynthesis?",
            "output": "Plants turn light into sugar.",
        },
    ]
    store = _store_with(tmp_path, "near.jsonl", rows)
    # without scores the earliest is kept
    run_pipeline(store, PipelineConfig(steps=[StepConfig(type="near_dedup")]))
    got = _decisions(store)
    assert set(got) == {"b", "c"}
    assert all(
        v == "drop" and ref == "a" and "cluster of 3" in why
        for v, why, ref in got.values()
    )
    # with a quality step before it, the copy without a problem wins over an earlier one with one
    rows[0]["output"] = EN + " As an AI language model, I hope this helps"
    (tmp_path / "2").mkdir()
    store2 = _store_with(tmp_path / "2", "near.jsonl", rows)
    run_pipeline(
        store2,
        PipelineConfig(
            steps=[
                StepConfig(
                    type="quality",
                    params={"rules": {"boilerplate": {"verdict": "flag"}}},
                ),
                StepConfig(type="near_dedup"),
            ]
        ),
    )
    got = _decisions(store2)
    assert got["a"][2] == "b" and "c" in got and "b" not in got


def test_reference_batches_are_never_dropped(tmp_path) -> None:
    store = Store(tmp_path / "curate.duckdb")
    ref = tmp_path / "approved.jsonl"
    new = tmp_path / "new.jsonl"
    ref.write_text(
        json.dumps({"id": "r", "instruction": "Explain binary search.", "output": EN})
        + "\n",
        encoding="utf-8",
    )
    new.write_text(
        json.dumps(
            {
                "id": "n",
                "instruction": "Explain binary search.",
                "output": EN.replace("middle", "central"),
            }
        )
        + "\n"
        + json.dumps(
            {
                "id": "m",
                "instruction": "Explain it.",
                "output": "Something else entirely, about cooking rice.",
            }
        )
        + "\n",
        encoding="utf-8",
    )
    ingest_paths(store, [str(ref)])
    ingest_paths(store, [str(new)])
    with store.reader() as con:
        ref_batch = con.execute(
            "SELECT batch_id FROM batches WHERE source LIKE '%approved.jsonl'"
        ).fetchall()[0][0]
    run_pipeline(
        store,
        PipelineConfig(
            steps=[
                StepConfig(type="near_dedup", params={"reference_batches": [ref_batch]})
            ]
        ),
    )
    got = _decisions(store)
    assert (
        list(got) == ["n"] and got["n"][2] == "r" and "reference sample" in got["n"][1]
    )


def test_same_instruction_with_different_answers_is_flagged(tmp_path) -> None:
    rows = [
        {
            "id": "a",
            "instruction": "What is the boiling point of water at sea level in degrees Celsius?",
            "output": "100 degrees Celsius.",
        },
        {
            "id": "b",
            "instruction": "What is the boiling point of water at sea level in degrees Celsius?",
            "output": "It boils at 90 degrees.",
        },
        {
            "id": "c",
            "instruction": "Name the capital city of France, please, in one word.",
            "output": "Paris",
        },
        {
            "id": "d",
            "instruction": "Name the capital city of France, please, in one word.",
            "output": "Paris",
        },
    ]
    store = _store_with(tmp_path, "conflict.jsonl", rows)
    run_pipeline(
        store,
        PipelineConfig(
            steps=[StepConfig(type="near_dedup", params={"compare": "instruction"})]
        ),
    )
    got = _decisions(store)
    assert set(got) == {
        "a",
        "b",
    }  # c and d agree: not a conflict (exact / near dedup handle copies)
    assert all(
        v == "flag" and why.startswith("conflicting answers")
        for v, why, _ in got.values()
    )


def test_decontamination_drops_overlaps_with_the_evaluation_set(tmp_path) -> None:
    from curation.errors import UsageError
    from curation.pipeline.registry import build_step

    eval_file = tmp_path / "gsm_test.jsonl"
    eval_file.write_text(
        json.dumps(
            {
                "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
                "in May. How many clips did Natalia sell altogether in April and May?",
                "answer": "72",
            }
        )
        + "\n"
        + json.dumps({"id": "zh-1", "question": ZH, "answer": "略"}, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    rows = [
        {
            "id": "leak",
            "instruction": "Solve: Natalia sold clips to 48 of her friends in April, and then she sold half "
            "as many clips in May. How many clips?",
            "output": "72 clips.",
        },
        {"id": "leak-zh", "instruction": "请解释：" + ZH[:30], "output": "好的。"},
        {
            "id": "clean",
            "instruction": "Natalia sold clips.",
            "output": "In April and May.",
        },
    ]
    store = _store_with(tmp_path, "train.jsonl", rows)
    run_pipeline(
        store,
        PipelineConfig(
            steps=[
                StepConfig(
                    type="decontaminate", params={"eval_paths": [str(eval_file)]}
                )
            ]
        ),
    )
    with store.reader() as con:
        got = dict(
            con.execute(
                "SELECT s.external_id, d.reason FROM decisions d JOIN samples s USING (sample_id)"
            ).fetchall()
        )
    assert set(got) == {"leak", "leak-zh"}
    assert (
        "gsm_test.jsonl:1" in got["leak"] and "natalia sold clips to 48" in got["leak"]
    )
    assert "zh-1" in got["leak-zh"]
    try:
        build_step(
            StepConfig(
                type="decontaminate",
                params={"eval_paths": [str(tmp_path / "missing.jsonl")]},
            )
        )
    except UsageError as e:
        assert "missing.jsonl is not a file" in str(e)
    else:
        raise AssertionError("a missing evaluation file must be a usage error")


def test_jaccard_matches_python_sets_across_chunks() -> None:
    import numpy as np

    from curation.dedup.minhash import jaccard

    rng = np.random.default_rng(3)
    # small vocabularies: duplicates inside a list (counted once) and large overlaps between lists
    lists = [
        rng.integers(0, int(rng.integers(2, 60)), int(rng.integers(1, 80))).astype(
            np.uint64
        )
        << np.uint64(40)
        for _ in range(300)
    ]
    col = pa.chunked_array(
        [
            pa.array([x.tolist() for x in lists[:100]], pa.list_(pa.uint64())),
            pa.array([x.tolist() for x in lists[100:]], pa.list_(pa.uint64())),
        ]
    )
    a, b = rng.integers(0, 300, 2000), rng.integers(0, 300, 2000)
    want = [
        len(set(lists[i].tolist()) & set(lists[j].tolist()))
        / len(set(lists[i].tolist()) | set(lists[j].tolist()))
        for i, j in zip(a, b)
    ]
    for threads in (1, 2, 7):  # row and pair ranges in threads, more threads than some chunks have rows
        assert np.allclose(jaccard(col, a, b, threads=threads), want)
    assert np.allclose(jaccard(col, a[:1], b[:1]), want[:1]) and len(jaccard(col, a[:0], b[:0])) == 0


def test_small_buckets_give_all_pairs_large_ones_a_star() -> None:
    import numpy as np

    from curation.dedup.minhash import candidate_pairs

    keys = np.arange(200, dtype=np.uint64)[:, None] << np.uint64(
        32
    )  # one band, every row its own bucket
    keys[[5, 17, 90]] = 7 << 40  # a bucket of 3: its 3 pairs
    keys[100:160] = 9 << 40  # a bucket of 60: 59 pairs to its first member
    pairs = {tuple(x) for x in candidate_pairs(keys, small=50).tolist()}
    assert pairs == {(5, 17), (5, 90), (17, 90)} | {(100, j) for j in range(101, 160)}


def test_the_estimate_prefilter_keeps_pairs_at_the_threshold() -> None:
    assert 0.37 < MinHashParams(threshold=0.6).prefilter_floor() < 0.4
    assert (
        MinHashParams(threshold=0.6, num_perm=16).prefilter_floor() < 0
    )  # too few permutations: no prefilter


def _dialogues(rows: list[tuple[str, str]]) -> pa.Array:
    """One exchange per row, as a dialogue (its parts are not slices of its shingles: read back)."""
    from curation.pipeline.base import MESSAGE_TYPE

    return pa.array([[{"role": "user", "content": q, "reasoning": None},
                      {"role": "assistant", "content": a, "reasoning": None}] for q, a in rows], MESSAGE_TYPE)


def test_parts_read_back_for_the_pairs_decide_as_parts_made_for_every_sample(monkeypatch) -> None:  # noqa: ANN001
    """Under an executor, the instruction and answer sketches of dialogues are made in decide() for the samples of
    the near-copy pairs only, from their text read back (two batches: row numbers repeat); the decisions are
    those of sketches made for every sample."""
    import pyarrow.compute as pc

    from curation.pipeline.steps.near_dedup import NearDedupStep

    templated = ("I am Aurora, an AI assistant developed by the Northwind data team. I am here to help you with "
                 "questions about our products, your orders and our documentation.")
    rows = [("Who are you?", templated), ("What is your name?", templated), ("Who made you?", templated),
            ("Explain binary search.", EN), ("Explain binary search, please.", EN.replace("repeating", "and repeats")),
            ("解释二分查找。", ZH), ("请解释二分查找。", ZH.replace("直到", "一直到")),
            ("Explain binary search.", EN.replace("middle element", "central element")),
            ("Describe photosynthesis.", "Photosynthesis turns light into chemical energy in plants.")]

    def page(batch_id: int, part: list) -> pa.Table:
        n = len(part)
        return pa.table({
            "sample_id": [f"b{batch_id}-{i}" for i in range(n)], "batch_id": [batch_id] * n,
            "row_number": list(range(1, n + 1)), "shape": ["sharegpt"] * n, "source": ["x.jsonl"] * n,
            "instruction": pa.nulls(n, pa.string()), "input": [None] * n, "output": pa.nulls(n, pa.string()),
            "system": pa.nulls(n, pa.string()), "messages": _dialogues(part), "reasoning": pa.nulls(n, pa.string()),
            "quality_score": [1.0] * n})

    pages = [page(1, rows[:5]), page(2, rows[5:] + rows[:2])]  # b2-3: not a copy of anything
    everything = pa.concat_tables(pages)

    def run(deferred: bool) -> tuple[list, dict]:
        step = NearDedupStep()
        asked: list[int] = []
        if deferred:
            def texts_for(ids: pa.Array, rows: int, columns=None):  # noqa: ANN001, ANN202
                asked.append(len(ids))
                got = everything.filter(pc.is_in(everything.column("sample_id"), value_set=pa.array(ids)))
                got = got.select(["sample_id", *columns]) if columns else got  # only what the step asks for
                got = got.take(pa.array(list(range(got.num_rows))[::-1]))  # any order
                return (got.slice(k, rows) for k in range(0, got.num_rows, rows))
            step.texts_for = texts_for
        sig = pa.concat_tables([step.signatures(p) for p in pages])
        assert ("instruction_sketch" in sig.column_names) != deferred
        out = step.decide(sig)
        if deferred:
            assert asked and asked[0] < everything.num_rows  # only the samples of the pairs
        return out.decisions.to_pylist(), dict(out.counters)

    eager, deferred = run(False), run(True)
    assert eager == deferred
    monkeypatch.setattr("curation.pipeline.steps.near_dedup.READ_BACK_ROWS", 3)  # read back in parts
    assert run(True) == eager
    decisions, counters = eager
    assert counters["pairs_one_part_differs"] > 0  # the templated answers to different questions stay
    dropped = {d["sample_id"] for d in decisions}
    assert {"b1-4", "b2-1", "b2-2"} <= dropped and "b1-0" not in dropped and "b2-3" not in dropped


def test_a_part_that_is_the_same_text_in_both_samples_is_not_read_back() -> None:
    """Near-copy pairs mostly share one part verbatim (one answer pasted under a reworded question, a question
    asked twice): that part is similarity 1 from its hash, and only the other part's text is read back (dialogues:
    the parts of an instruction sample are never read back, see the next test)."""
    import pyarrow.compute as pc

    from curation.pipeline.steps.near_dedup import NearDedupStep

    question = "Write a short note that explains to a new colleague how binary search works on a sorted list."
    rows = [(question, EN), (question + " (2)", EN), (question + " Keep it brief.", EN),  # same answer
            ("Explain photosynthesis to a child in two sentences, please, without any jargon at all.",
             "Plants catch sunlight with their green leaves and use it to turn water and air into sugar they can eat."),
            ("Explain photosynthesis to a child in two sentences, please, without any jargon at all.",  # same question
             "Plants catch sunlight with their green leaves and use it to turn water and air into the sugar they eat.")]
    n = len(rows)
    page = pa.table({
        "sample_id": [f"s{i}" for i in range(n)], "batch_id": [1] * n, "row_number": list(range(1, n + 1)),
        "shape": ["sharegpt"] * n, "source": ["x.jsonl"] * n, "instruction": pa.nulls(n, pa.string()),
        "input": [None] * n, "output": pa.nulls(n, pa.string()), "system": pa.nulls(n, pa.string()),
        "messages": _dialogues(rows), "reasoning": pa.nulls(n, pa.string()), "quality_score": [1.0] * n})

    step = NearDedupStep()
    read: list[list[str]] = []

    def texts_for(ids: pa.Array, rows: int, columns=None):  # noqa: ANN001, ANN202
        read.append(sorted(pa.array(ids).to_pylist()))
        yield page.filter(pc.is_in(page.column("sample_id"), value_set=pa.array(ids)))

    step.texts_for = texts_for
    made: list[tuple[str, ...]] = []
    part_sketches = step._part_sketches
    step._part_sketches = lambda batch, parts: made.append(parts) or part_sketches(batch, parts)  # type: ignore[method-assign]
    out = step.decide(step.signatures(page))
    assert made == [("instruction",)]  # the answers were never sketched: the pairs that needed them share them
    assert read == [["s0", "s1", "s2"]]  # the photosynthesis pair shares its question: nothing read back for it
    eager = NearDedupStep()
    eager_out = eager.decide(eager.signatures(page))
    assert out.decisions.to_pylist() == eager_out.decisions.to_pylist()
    assert {d["sample_id"] for d in out.decisions.to_pylist()} == {"s1", "s2", "s4"}


def _instruction_page(rows: list[tuple], system: list | None = None) -> pa.Table:
    """An alpaca page of (instruction, input, output) rows."""
    from curation.pipeline.base import MESSAGE_TYPE

    n = len(rows)
    return pa.table({
        "sample_id": [f"s{i}" for i in range(n)], "batch_id": [1] * n, "row_number": list(range(1, n + 1)),
        "shape": ["alpaca"] * n, "source": ["x.jsonl"] * n, "instruction": [r[0] for r in rows],
        "input": [r[1] for r in rows], "output": [r[2] for r in rows],
        "system": pa.array(system or [None] * n, pa.string()), "messages": pa.nulls(n, MESSAGE_TYPE),
        "reasoning": pa.nulls(n, pa.string()), "quality_score": [1.0] * n})


def test_an_instruction_samples_parts_are_slices_of_its_own_shingles() -> None:
    """The instruction's shingles are the first ones of the sample's, the answer's the last ones: the same sets as
    the parts shingled alone, for English, Chinese, mixed text, an input, a system prompt, and letters whose lower
    case DuckDB writes in another number of bytes (the split is counted on the text as it is)."""
    import numpy as np

    from curation.duck import in_parts, query_arrow, scratch
    from curation.pipeline.steps.near_dedup import NearDedupStep

    rows = [("Explain binary search to a new colleague.", None, EN),
            ("解释二分查找的原理和步骤。", None, ZH),
            ("Translate into Chinese: binary search finds items fast.", "Use simple words.", ZH),
            ("İSTANBUL'DA ÇOK GÜZEL BİR GÜN, ȺȾ KELVIN 300 K", "", "Bugün İstanbul'da hava çok güzel ve güneşli."),
            ("把下面的句子翻译成英文：今天天气很好。", "今天天气很好，我们去公园散步吧。", "The weather is nice today; let's walk in the park."),
            ("Summarise:", "A" * 3 + " text of words here", "Short answer, four words.")]
    page = _instruction_page(rows, system=[None, "你是一个乐于助人的助手。", None, "Be brief.", None, None])
    for include_system in (False, True):
        step = NearDedupStep(params={"include_system": include_system})
        sig = step.signatures(page)
        shingles = sig.column("shingles").to_pylist()
        whole_by_char = sig.column("by_char").to_numpy(zero_copy_only=False)
        con = scratch()
        con.register("b", in_parts(page, ordinal="__ord"))
        for part in ("instruction", "output"):
            text = "concat_ws(chr(10), instruction, input)" if part == "instruction" else "output"
            if part == "instruction" and include_system:
                text = "concat_ws(chr(10), system, instruction, input)"
            alone = query_arrow(con, f"SELECT lower({text}) AS c FROM b ORDER BY __ord").column("c")
            by_char = np.zeros(len(rows), np.bool_)
            own = step._shingles(alone, page.column("sample_id"), by_char).to_pylist()
            first, count, ok = step._slices(sig, part)
            assert ok.all()
            for i in range(len(rows)):
                if by_char[i] == whole_by_char[i]:  # a pair shingled two ways is read back (next test)
                    assert set(shingles[i][first[i]:first[i] + count[i]]) == set(own[i]), (part, i)
            assert (by_char == whole_by_char).sum() >= len(rows) - 1
        con.close()


def test_instruction_samples_decide_their_parts_without_reading_text_back() -> None:
    """Instruction samples compare their parts from slices of their shingles (true Jaccard): nothing is read back,
    the templated answers to different questions stay, the reworded copies go, as when the parts' text is read
    back and sketched; a pair whose system prompts differ is read back (its instruction part includes them)."""
    import pyarrow.compute as pc

    from curation.pipeline.steps.near_dedup import NearDedupStep

    templated = ("I am Aurora, an AI assistant developed by the Northwind data team. I am here to help you with "
                 "questions about our products, your orders and our documentation.")
    rows = [("Who are you? Please introduce yourself.", None, templated),
            ("What is your name and who built you?", None, templated),
            ("Explain binary search to me.", None, EN),
            ("Explain binary search to me, please.", None, EN.replace("repeating", "and repeats")),
            ("请解释一下二分查找。", None, ZH), ("请解释一下二分查找吧。", None, ZH.replace("直到", "一直到")),
            ("Explain binary search to me.", None, EN.replace("middle element", "central element")),
            ("Describe photosynthesis.", None, "Photosynthesis turns light into chemical energy in plants.")]

    def decide(page: pa.Table, drop_slices: bool) -> tuple[list, list]:
        step = NearDedupStep()
        read: list[int] = []

        def texts_for(ids: pa.Array, rows: int, columns=None):  # noqa: ANN001, ANN202
            read.append(len(ids))
            yield page.filter(pc.is_in(page.column("sample_id"), value_set=pa.array(ids)))

        step.texts_for = texts_for
        sig = step.signatures(page)
        if drop_slices:  # the parts from their text read back, as for dialogues
            sig = sig.drop_columns(["split"])
        out = step.decide(sig)
        assert out.counters["pairs_one_part_differs"] >= 1  # the identity answers
        return sorted(d["sample_id"] for d in out.decisions.to_pylist()), read

    page = _instruction_page(rows)
    dropped, read = decide(page, drop_slices=False)
    assert read == []
    assert dropped == ["s3", "s5", "s6"]
    back, read = decide(page, drop_slices=True)  # the samples of the pairs read back and sketched
    assert back == dropped and read and read[0] == 7
    systems = ["You answer as Aurora."] + [None] * (len(rows) - 1)  # s0's instruction part differs from s1's
    dropped, read = decide(_instruction_page(rows, systems), drop_slices=False)
    assert read == [2] and dropped == ["s3", "s5", "s6"]


def test_signatures_are_the_minimum_of_each_hash_function_over_the_shingles() -> None:
    """The compiled MinHash loop, on one thread and on two (row ranges), on a slice, against the definition (in
    unsigned arithmetic, where the loop uses signed)."""
    import numpy as np

    from curation.dedup.minhash import _hash_params, signatures

    rng = np.random.default_rng(3)
    # every count from 1 to 17 (the loop takes eight shingles at a time, then the rest one by one), then larger
    sizes = [*range(1, 18), *rng.integers(18, 300, size=43)]
    lists = [rng.integers(0, 2**64, size=int(k), dtype=np.uint64).tolist() for k in sizes]
    p = MinHashParams()
    a, b = _hash_params(p)
    with np.errstate(over="ignore"):
        want = np.array([((a[:, None] * np.array(x, np.uint64)[None, :] + b[:, None]) >> np.uint64(32)).min(axis=1)
                         for x in lists], dtype=np.uint32)
    arr = pa.array(lists, pa.list_(pa.uint64()))
    np.testing.assert_array_equal(signatures(arr, p, threads=1), want)
    np.testing.assert_array_equal(signatures(arr, p, threads=2), want)
    np.testing.assert_array_equal(signatures(arr.slice(7, 20), p), want[7:27])
