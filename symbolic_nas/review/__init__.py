"""Review layer: TensorBoard logs, the event-file writer and the progress bar.

Everything here is a :class:`~symbolic_nas.tuner.callbacks.Callback` or serves one:
callbacks observe a search, they never steer it.
"""

from symbolic_nas.review.events import EventFile
from symbolic_nas.review.progress import ProgressCallback
from symbolic_nas.review.tensorboard import TensorBoardCallback

__all__ = ["EventFile", "ProgressCallback", "TensorBoardCallback"]
