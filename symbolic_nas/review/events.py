"""A small synchronous TensorBoard event-file writer and the summaries it writes.

TensorBoard reads event files: TFRecord-framed ``Event`` protos (a length, its
masked CRC-32C, the proto, the proto's masked CRC-32C). :class:`EventFile`
writes one such file without threads and without TensorFlow; the protos are
TensorBoard's own (``tensorboard.compat.proto``, the hparams plugin's
``plugin_data_pb2``/``api_pb2`` and ``metadata`` helpers), and the checksum is
``google-crc32c``'s C implementation (the pure-Python one that TensorBoard's
own ``RecordWriter`` uses costs a trial a good part of a millisecond:
``benchmarks/RESULTS-tuner.md``).

Opening an :class:`EventFile` creates its folder if needed and the file, nothing
more, so one file per trial run stays cheap, unlike a ``SummaryWriter`` (a thread
per writer).
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Iterable, Mapping, Sequence

import google_crc32c
from google.protobuf import struct_pb2
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
from tensorboard.compat.proto import types_pb2 as tb_types_pb2
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.text import metadata as text_metadata

__all__ = [
    "FAILURE",
    "SUCCESS",
    "EventFile",
    "SessionStartEncoder",
    "event_record",
    "experiment_value",
    "masked_crc32c",
    "scalar_values",
    "session_end_value",
    "session_start_value",
    "text_value",
    "write_event_file",
]

SUCCESS = api_pb2.STATUS_SUCCESS
FAILURE = api_pb2.STATUS_FAILURE

_FILE_VERSION = "brain.Event:2"
_TEXT_METADATA = text_metadata.create_summary_metadata(display_name=None, description=None)
_SCALAR_SHAPE = tensor_shape_pb2.TensorShapeProto()


def masked_crc32c(data: bytes) -> int:
    """The masked CRC-32C of ``data`` that TFRecord framing stores.

    Example:
        >>> masked_crc32c(b"")
        2726488792
    """
    x = google_crc32c.value(data)
    return ((((x >> 15) | (x << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _frame(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return b"".join(
        (
            header,
            struct.pack("<I", masked_crc32c(header)),
            data,
            struct.pack("<I", masked_crc32c(data)),
        )
    )


def event_record(
    values: Iterable[summary_pb2.Summary.Value] = (),
    *,
    step: int,
    wall_time: float | None = None,
    scalars: Mapping[str, float] | None = None,
) -> bytes:
    """One event holding ``values`` (summary values) and ``scalars`` at ``step``, framed
    for an event file.

    Args:
        values: Summary values (see :func:`text_value`, :func:`experiment_value`, ...).
        step: The event's step.
        wall_time: The event's time (default: now).
        scalars: Scalars by tag, added as ``simple_value`` (cheaper than
            :func:`scalar_values`, which builds separate messages).

    Example:
        >>> len(event_record(step=1, wall_time=0.0, scalars={"loss": 0.5})) > 16
        True
    """
    event = event_pb2.Event(wall_time=time.time() if wall_time is None else wall_time, step=step)
    summary_values = event.summary.value
    if scalars:
        add = summary_values.add
        for tag, value in scalars.items():
            add(tag=tag, simple_value=value)
    summary_values.extend(values)
    return _frame(event.SerializeToString())


def _create_event_file(directory: str) -> tuple[str, int, float]:
    """Creates a new, exclusively owned event file; returns its path, descriptor and time."""
    now = time.time()
    stem = f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{os.getpid()}"
    n = 0
    while True:
        path = os.path.join(directory, f"{stem}.{n}")
        try:
            return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), now
        except FileExistsError:
            n += 1


def _file_version(wall_time: float) -> bytes:
    return _frame(
        event_pb2.Event(wall_time=wall_time, file_version=_FILE_VERSION).SerializeToString()
    )


class EventFile:
    """Appends events to one new TensorBoard event file (synchronous, no threads).

    The file is named like TensorFlow's (``events.out.tfevents.<time>.<host>.<pid>.<n>``)
    and is created exclusively, so two writers never share a file. Writes are
    buffered until :meth:`flush` or :meth:`close`.

    Args:
        directory: The run directory (created if missing).

    Example:
        >>> import tempfile
        >>> with EventFile(tempfile.mkdtemp()) as f:
        ...     f.write(scalar_values({"loss": 0.5}), step=1)
        >>> f.path.rsplit("/", 1)[1].startswith("events.out.tfevents.")
        True
    """

    def __init__(self, directory: str | os.PathLike[str]):
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        self.path, fd, now = _create_event_file(directory)
        self._file = os.fdopen(fd, "wb")
        self._file.write(_file_version(now))

    def write(
        self,
        values: Iterable[summary_pb2.Summary.Value] = (),
        *,
        step: int,
        wall_time: float | None = None,
        scalars: Mapping[str, float] | None = None,
    ) -> None:
        """Writes one event holding ``values`` and ``scalars`` at ``step`` (see
        :func:`event_record`)."""
        self._file.write(event_record(values, step=step, wall_time=wall_time, scalars=scalars))

    def write_record(self, record: bytes) -> None:
        """Writes events framed by :func:`event_record`."""
        self._file.write(record)

    def flush(self) -> None:
        """Hands buffered events to the operating system."""
        self._file.flush()

    def close(self) -> None:
        """Flushes and closes the file (idempotent)."""
        if not self._file.closed:
            self._file.close()

    @property
    def closed(self) -> bool:
        return self._file.closed

    def __enter__(self) -> EventFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_event_file(directory: str | os.PathLike[str], record: bytes) -> str:
    """Creates ``directory`` if needed and a new event file in it holding ``record``.

    Only system calls and a few lines of Python run here, so it suits a
    background thread (it holds the GIL very briefly).

    Returns:
        The file's path.

    Example:
        >>> import tempfile
        >>> path = write_event_file(tempfile.mkdtemp(), event_record(step=0))
        >>> os.path.getsize(path) > 0
        True
    """
    directory = os.fspath(directory)
    try:
        os.mkdir(directory)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(directory, exist_ok=True)
    path, fd, now = _create_event_file(directory)
    try:
        data = memoryview(_file_version(now) + record)
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)
    return path


def scalar_values(scalars: Mapping[str, float]) -> list[summary_pb2.Summary.Value]:
    """Scalar summary values (``simple_value``, which TensorBoard reads as scalars).

    Example:
        >>> [(v.tag, v.simple_value) for v in scalar_values({"a": 1.5})]
        [('a', 1.5)]
    """
    return [summary_pb2.Summary.Value(tag=k, simple_value=v) for k, v in scalars.items()]


def text_value(tag: str, text: str) -> summary_pb2.Summary.Value:
    """A text-plugin summary value (TensorBoard renders it as Markdown).

    Example:
        >>> text_value("note", "**hi**").tensor.string_val
        [b'**hi**']
    """
    tensor = tensor_pb2.TensorProto(
        dtype=tb_types_pb2.DT_STRING, tensor_shape=_SCALAR_SHAPE, string_val=[text.encode()]
    )
    return summary_pb2.Summary.Value(tag=tag, metadata=_TEXT_METADATA, tensor=tensor)


def _hparams_value(tag: str, data: plugin_data_pb2.HParamsPluginData) -> summary_pb2.Summary.Value:
    return summary_pb2.Summary.Value(
        tag=tag,
        metadata=hparams_metadata.create_summary_metadata(data),
        tensor=hparams_metadata.NULL_TENSOR,
    )


def experiment_value(
    hparams: Mapping[str, Sequence[str]],
    metrics: Mapping[str, str],
    *,
    time_created_secs: float,
    intervals: Mapping[str, tuple[float, float]] | None = None,
) -> summary_pb2.Summary.Value:
    """The HParams experiment: string hparams with discrete domains, numeric hparams
    with intervals, and metric tags.

    Args:
        hparams: Each hparam's name and its domain (kept in the given order).
        intervals: Each numeric (float) hparam's name and its ``(min, max)``,
            shown after the string hparams.
        metrics: The scalar tag of each metric in the session runs and the name
            the dashboard shows for it.
        time_created_secs: The experiment's creation time.

    Example:
        >>> v = experiment_value({"k": ["3", "5"]}, {"trial/reward": "reward"}, time_created_secs=0)
        >>> v.tag
        '_hparams_/experiment'
    """
    experiment = api_pb2.Experiment(
        time_created_secs=time_created_secs,
        hparam_infos=[
            api_pb2.HParamInfo(
                name=name,
                type=api_pb2.DATA_TYPE_STRING,
                domain_discrete=struct_pb2.ListValue(
                    values=[struct_pb2.Value(string_value=label) for label in domain]
                ),
            )
            for name, domain in hparams.items()
        ]
        + [
            api_pb2.HParamInfo(
                name=name,
                type=api_pb2.DATA_TYPE_FLOAT64,
                domain_interval=api_pb2.Interval(min_value=low, max_value=high),
            )
            for name, (low, high) in (intervals or {}).items()
        ],
        metric_infos=[
            api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=display_name)
            for tag, display_name in metrics.items()
        ],
    )
    return _hparams_value(
        hparams_metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment)
    )


def session_start_value(
    hparams: Mapping[str, str], *, group_name: str, start_time_secs: float
) -> summary_pb2.Summary.Value:
    """The HParams session start of one run: its hparam values.

    Example:
        >>> v = session_start_value({"k": "5"}, group_name="trials/00001", start_time_secs=0.0)
        >>> v.tag
        '_hparams_/session_start_info'
    """
    info = plugin_data_pb2.SessionStartInfo(group_name=group_name, start_time_secs=start_time_secs)
    for name, label in hparams.items():
        info.hparams[name].string_value = label
    return _hparams_value(
        hparams_metadata.SESSION_START_INFO_TAG,
        plugin_data_pb2.HParamsPluginData(session_start_info=info),
    )


class SessionStartEncoder:
    """Builds session starts for hparams with fixed discrete string domains, fast.

    Each (hparam, value) pair is serialised once and cached; a session start is
    then the concatenation of its pairs (protobuf messages merge on
    concatenation), about twice as fast as :func:`session_start_value`.

    Args:
        domains: Each hparam's name and its domain.

    Example:
        >>> encoder = SessionStartEncoder({"k": ["3", "5"], "act": ["relu", "gelu"]})
        >>> v = encoder.value([1, 0], group_name="trials/00001", start_time_secs=0.0)
        >>> info = plugin_data_pb2.HParamsPluginData.FromString(v.metadata.plugin_data.content)
        >>> sorted((k, x.string_value) for k, x in info.session_start_info.hparams.items())
        [('act', 'relu'), ('k', '5')]
    """

    def __init__(self, domains: Mapping[str, Sequence[str]]):
        self._names = list(domains)
        self._domains = [list(d) for d in domains.values()]
        self._cache: dict[tuple[int, int], bytes] = {}

    def _entry(self, i: int, j: int) -> bytes:
        entry = self._cache.get((i, j))
        if entry is None:
            info = plugin_data_pb2.SessionStartInfo()
            info.hparams[self._names[i]].string_value = self._domains[i][j]
            entry = self._cache[(i, j)] = info.SerializeToString()
        return entry

    def value(
        self,
        choices: Sequence[int],
        *,
        group_name: str,
        start_time_secs: float,
        numbers: Mapping[str, float] | None = None,
    ) -> summary_pb2.Summary.Value:
        """The session start whose hparam ``i`` takes ``domains[i][choices[i]]``, and
        each numeric hparam in ``numbers`` its value."""
        if len(choices) != len(self._names):
            raise ValueError(
                f"`choices` must hold one index per hparam ({len(self._names)}), "
                f"but got {len(choices)}"
            )
        info = plugin_data_pb2.SessionStartInfo(
            group_name=group_name, start_time_secs=start_time_secs
        )
        for name, number in (numbers or {}).items():
            info.hparams[name].number_value = number
        tail = info.SerializeToString()
        data = plugin_data_pb2.HParamsPluginData(version=hparams_metadata.PLUGIN_DATA_VERSION)
        data.session_start_info.MergeFromString(
            b"".join([self._entry(i, j) for i, j in enumerate(choices)]) + tail
        )
        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(
                plugin_name=hparams_metadata.PLUGIN_NAME, content=data.SerializeToString()
            )
        )
        return summary_pb2.Summary.Value(
            tag=hparams_metadata.SESSION_START_INFO_TAG,
            metadata=metadata,
            tensor=hparams_metadata.NULL_TENSOR,
        )


def session_end_value(status: int, *, end_time_secs: float) -> summary_pb2.Summary.Value:
    """The HParams session end of one run: :data:`SUCCESS` or :data:`FAILURE`.

    Example:
        >>> session_end_value(SUCCESS, end_time_secs=0.0).tag
        '_hparams_/session_end_info'
    """
    info = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=end_time_secs)
    return _hparams_value(
        hparams_metadata.SESSION_END_INFO_TAG,
        plugin_data_pb2.HParamsPluginData(session_end_info=info),
    )
