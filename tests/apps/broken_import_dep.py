"""A module importing something missing: the message must name the missing dependency."""

import a_dependency_that_is_missing  # type: ignore[import-not-found]  # the point of the test

app = a_dependency_that_is_missing
