"""Tests for the shipped NAS-Bench-201 CIFAR-10 table."""

from __future__ import annotations

import gzip
import itertools
import pathlib
import timeit

import numpy as np
import pytest

from symbolic_nas.nasbench import NasBench201Table

BEST_ARCH = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)


@pytest.fixture(scope="module")
def table() -> NasBench201Table:
    return NasBench201Table()


def test_shape_and_columns(table: NasBench201Table) -> None:
    assert len(table) == 15625 == NasBench201Table.NUM_CELLS
    assert table.columns == (
        "c10valid_val_12",
        "c10valid_val_200",
        "c10valid_test_200",
        "c10_test_12",
        "c10_test_200",
        "params_mb",
    )
    for name in table.columns:
        column = table.column(name)
        assert column.dtype == np.float64 and column.shape == (15625,)
        assert np.isfinite(column).all()
    np.testing.assert_array_equal(table.indices, np.arange(15625))


def test_known_facts(table: NasBench201Table) -> None:
    test_200 = table.column("c10_test_200")
    best = int(np.argmax(test_200))
    assert round(float(test_200[best]), 4) == 94.3733
    assert int(table.indices[best]) == 6111
    assert table.arch_str(6111) == BEST_ARCH
    assert table.index_of(BEST_ARCH) == 6111
    # The top test accuracy is shared by two cells.
    assert np.flatnonzero(test_200 == test_200.max()).tolist() == [6111, 13714]

    val_200 = table.column("c10valid_val_200")
    assert round(float(val_200.max()), 4) == 91.6067
    assert int(np.argmax(val_200)) == 6111

    # The NAS-Bench-201 protocol: select by 12-epoch validation, report 200-epoch test.
    val_12 = table.column("c10valid_val_12")
    pick = int(np.argmax(val_12))
    assert np.flatnonzero(val_12 == val_12.max()).tolist() == [13714]
    assert round(float(val_12[pick]), 3) == 84.892
    assert round(float(test_200[pick]), 2) == 94.37


def test_round_trips_for_every_row(table: NasBench201Table) -> None:
    codes = table.codes
    assert codes.shape == (15625, 6)
    # Every one of the 5**6 cells is present exactly once.
    assert len({tuple(row) for row in codes.tolist()}) == 15625
    np.testing.assert_array_equal(table.rows_of_codes(codes), np.arange(15625))
    for row in range(len(table)):
        arch = table.arch_str(int(table.indices[row]))
        ops = NasBench201Table.arch_str_to_ops(arch)
        row_codes = codes[row].tolist()
        assert ops == tuple(NasBench201Table.OPS[c] for c in row_codes)
        assert NasBench201Table.ops_to_arch_str(ops) == arch
        assert NasBench201Table.codes_to_arch_str(row_codes) == arch
        assert NasBench201Table.arch_str_to_codes(arch) == tuple(row_codes)
        assert table.row_of_codes(row_codes) == row
        assert table.index_of(arch) == int(table.indices[row])


def test_edges_and_ops_order() -> None:
    assert NasBench201Table.OPS == (
        "none",
        "skip_connect",
        "nor_conv_1x1",
        "nor_conv_3x3",
        "avg_pool_3x3",
    )
    assert NasBench201Table.EDGES == ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
    arch = NasBench201Table.ops_to_arch_str(
        ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "none"]
    )
    assert arch == (
        "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    )


def test_row_of_codes_is_fast(table: NasBench201Table) -> None:
    codes = (3, 3, 3, 1, 3, 2)
    seconds = min(timeit.repeat(lambda: table.row_of_codes(codes), number=20000, repeat=3))
    assert seconds / 20000 < 20e-6  # About 0.6 µs here; generous for slow CI machines.


@pytest.mark.parametrize(
    "arch",
    [
        "",
        "abc",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|",
        BEST_ARCH + "+|none~0|",
        BEST_ARCH.replace("nor_conv_1x1~2", "nor_conv_1x1~1"),
        BEST_ARCH.replace("skip_connect~0", "skip_connect0"),
        BEST_ARCH.replace("|+|", "||"),
    ],
)
def test_malformed_arch_strings(table: NasBench201Table, arch: str) -> None:
    with pytest.raises(ValueError, match="malformed") as info:
        table.index_of(arch)
    assert repr(arch) in str(info.value)


def test_bad_values_are_named(table: NasBench201Table) -> None:
    with pytest.raises(ValueError, match="unknown op 'conv_5x5'"):
        NasBench201Table.arch_str_to_ops(BEST_ARCH.replace("nor_conv_1x1", "conv_5x5"))
    with pytest.raises(ValueError, match=r"but got 'conv_5x5' in"):
        NasBench201Table.ops_to_arch_str(["none"] * 5 + ["conv_5x5"])
    with pytest.raises(ValueError, match=r"sequence of 6 op names, but got \['none'\]"):
        NasBench201Table.ops_to_arch_str(["none"])
    with pytest.raises(ValueError, match=r"6 op names, but got 'none'"):
        NasBench201Table.ops_to_arch_str("none")
    for codes in ([0] * 5, [0] * 7, [0, 0, 0, 0, 0, 5], [-1, 0, 0, 0, 0, 0], [0.0] * 6, "abcdef"):
        with pytest.raises(ValueError, match=r"`codes` must be 6 ints in range\(5\), but got"):
            table.row_of_codes(codes)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"`codes` must be"):
            table.rows_of_codes(np.asarray([codes]) if codes != "abcdef" else codes)
    with pytest.raises(ValueError, match=r"`codes` must be 6 ints"):
        NasBench201Table.codes_to_arch_str([0, 1, 2, 3, 4, 5])
    with pytest.raises(KeyError, match="unknown column 'c100_test_200'"):
        table.column("c100_test_200")
    with pytest.raises(KeyError, match="index 15625 is not in the table"):
        table.arch_str(15625)
    with pytest.raises(ValueError, match="`path` must be"):
        NasBench201Table(3)  # type: ignore[arg-type]


def _write_csv(path: pathlib.Path, lines: list[str], *, compress: bool = False) -> None:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.mark.parametrize("compress", [False, True])
def test_custom_csv_subset(tmp_path: pathlib.Path, compress: bool) -> None:
    other = NasBench201Table.ops_to_arch_str(["none"] * 6)
    path = tmp_path / ("t.csv.gz" if compress else "t.csv")
    _write_csv(
        path, ["arch_str,index,score", f"{BEST_ARCH},6111,1.5", f"{other},7,"], compress=compress
    )
    table = NasBench201Table(path)
    assert len(table) == 2 and table.columns == ("score",)
    assert table.index_of(other) == 7 and table.row_of_index(7) == 1
    assert table.column("score")[0] == 1.5 and np.isnan(table.column("score")[1])
    assert table.row_of_codes(NasBench201Table.arch_str_to_codes(BEST_ARCH)) == 0
    absent = NasBench201Table.ops_to_arch_str(["skip_connect"] * 6)
    with pytest.raises(KeyError, match="not in the table"):
        table.index_of(absent)
    with pytest.raises(KeyError, match=r"codes \(1, 1, 1, 1, 1, 1\) are not in the table"):
        table.row_of_codes((1, 1, 1, 1, 1, 1))
    with pytest.raises(KeyError, match=r"codes \[1, 1, 1, 1, 1, 1\] are not in the table"):
        table.rows_of_codes([[0] * 6, [1] * 6])


def test_custom_csv_errors(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "t.csv"
    _write_csv(path, ["index,score", "0,1.0"])
    with pytest.raises(ValueError, match=r"t\.csv.*lacks required column\(s\) \['arch_str'\]"):
        NasBench201Table(path)
    _write_csv(path, ["arch_str,score", f"{BEST_ARCH},1.0"])
    with pytest.raises(ValueError, match=r"lacks required column\(s\) \['index'\]"):
        NasBench201Table(path)
    _write_csv(path, ["index,arch_str,score", f"0,{BEST_ARCH},x"])
    with pytest.raises(ValueError, match="column 'score' must be numeric"):
        NasBench201Table(path)
    _write_csv(path, ["index,arch_str", "0,|none~0|"])
    with pytest.raises(ValueError, match=r"line 2: arch string '\|none~0\|' is malformed"):
        NasBench201Table(path)
    _write_csv(path, ["index,arch_str", f"0,{BEST_ARCH}", f"1,{BEST_ARCH}"])
    with pytest.raises(ValueError, match="repeats an architecture"):
        NasBench201Table(path)
    _write_csv(path, ["index,arch_str", f"0,{BEST_ARCH},9"])
    with pytest.raises(ValueError, match="line 2 has 3 fields, expected 2"):
        NasBench201Table(path)


def test_all_code_tuples_resolve(table: NasBench201Table) -> None:
    rows = {table.row_of_codes(c) for c in itertools.product(range(5), repeat=6)}
    assert rows == set(range(15625))
