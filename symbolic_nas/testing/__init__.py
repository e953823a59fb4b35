"""Public contract suites that every registered algorithm and space must pass.

Run them over the registries in your own tests, or on your own algorithm or
space before registering it.
"""

from symbolic_nas.testing.algorithms import ToyObjective as ToyObjective
from symbolic_nas.testing.algorithms import algorithm_test_spaces as algorithm_test_spaces
from symbolic_nas.testing.algorithms import check_algorithm as check_algorithm
from symbolic_nas.testing.algorithms import check_async_feedback as check_async_feedback
from symbolic_nas.testing.algorithms import check_beats_random as check_beats_random
from symbolic_nas.testing.algorithms import check_failure_policy as check_failure_policy
from symbolic_nas.testing.algorithms import check_reproducible as check_reproducible
from symbolic_nas.testing.algorithms import check_state_dict as check_state_dict
from symbolic_nas.testing.algorithms import check_valid_proposals as check_valid_proposals
from symbolic_nas.testing.spaces import check_registered_space as check_registered_space
from symbolic_nas.testing.spaces import check_space as check_space
from symbolic_nas.testing.spaces import check_space_deterministic as check_space_deterministic
from symbolic_nas.testing.spaces import check_space_encoding as check_space_encoding
from symbolic_nas.testing.spaces import check_space_forward as check_space_forward
from symbolic_nas.testing.spaces import check_space_reachable as check_space_reachable
