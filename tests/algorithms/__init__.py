"""Tests of the registered algorithms and the controller family."""
