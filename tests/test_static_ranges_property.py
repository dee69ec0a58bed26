"""Property checks of the Range planner: whatever the field, a plan never
asks for bytes outside the file, never more than the file in total, and
never overlapping pieces (hypothesis)."""

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from axkit.files import ranges

spec = st.one_of(
    st.tuples(st.integers(0, 3000), st.integers(0, 3000)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.integers(0, 3000).map(lambda n: f"{n}-"),
    st.integers(0, 3000).map(lambda n: f"-{n}"),
    st.text("0123456789-, =abx", max_size=8),
)
field = st.lists(spec, min_size=0, max_size=80).map(lambda specs: "bytes=" + ",".join(specs))


class PlanProperties(SynchronousTestCase):
    @settings(max_examples=400, deadline=None)
    @given(field, st.integers(0, 2500))
    def test_plan_is_bounded(self, value, size):
        plan = ranges.plan(value, size)
        if plan is None or plan is ranges.UNSATISFIABLE:
            return
        self.assertTrue(plan)
        self.assertLessEqual(len(plan), ranges.MAX_RANGES)
        total = 0
        previous_end = -1
        for first, last in sorted(plan):
            self.assertTrue(0 <= first <= last < size, (first, last, size))
            self.assertGreater(first, previous_end)
            previous_end = last
            total += last - first + 1
        self.assertLessEqual(total, size)

    @settings(max_examples=200, deadline=None)
    @given(st.integers(1, 5000), st.data())
    def test_multipart_length_is_exact(self, size, data):
        first = data.draw(st.integers(0, size - 1))
        last = data.draw(st.integers(first, size - 1))
        second = data.draw(st.integers(0, size - 1))
        plan = [(first, last)] + ([(second, second)] if second > last else [])
        segments, length = ranges.multipart_segments(plan, size, "text/plain", "b0undary")
        self.assertEqual(length, sum(len(s) if isinstance(s, bytes) else s[1] for s in segments))
