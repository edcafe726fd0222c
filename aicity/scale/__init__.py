"""Scale-out: a city split into districts, each district's twins and loop in its own process (a Ray actor),
stepping together each decision interval and exchanging only what crosses a border; the orchestration stage
sees the whole city. See :mod:`aicity.scale.partition`, :mod:`aicity.scale.district` and
:mod:`aicity.scale.coordinator`."""
