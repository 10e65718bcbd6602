"""The export validators name each way a speedscope or Chrome trace document can be malformed."""

import pytest

from nbcvm.report.exports import SPEEDSCOPE_SCHEMA, validate_chrome, validate_speedscope


def speedscope(*profiles, frames=({"name": "main"}, {"name": "f"})):
    return {"$schema": SPEEDSCOPE_SCHEMA, "shared": {"frames": list(frames)}, "profiles": list(profiles)}


def evented(*events, **over):
    p = {"type": "evented", "name": "p", "unit": "nanoseconds", "startValue": 0, "endValue": 9,
         "events": [{"type": t, "frame": fr, "at": at} for t, fr, at in events]}
    p.update(over)
    return p


def test_valid_documents_have_no_problems():
    doc = speedscope(evented(("O", 0, 0), ("O", 1, 1), ("C", 1, 2), ("C", 0, 3)),
                     {"type": "sampled", "name": "s", "unit": "none", "startValue": 0, "endValue": 1,
                      "samples": [[0]], "weights": [1]})
    assert validate_speedscope(doc) == []


@pytest.mark.parametrize("doc,problems", [
    ([], ["document is not an object"]),
    ({"shared": []}, ["$schema missing or wrong", "shared.frames missing"]),
    ({"$schema": SPEEDSCOPE_SCHEMA, "shared": {"frames": [{"name": 1}, "x"]}},
     ["frame 0 has no name", "frame 1 has no name", "profiles missing"]),
])
def test_speedscope_document_shape(doc, problems):
    assert validate_speedscope(doc) == problems


@pytest.mark.parametrize("profile,problems", [
    ({"type": "evented", "unit": "parsecs", "events": []},
     ["profile 0: missing name", "profile 0: missing startValue", "profile 0: missing endValue",
      "profile 0: bad unit 'parsecs'"]),
    (evented(("X", 0, 0)), ["profile 0 event 0: bad event {'type': 'X', 'frame': 0, 'at': 0}"]),
    # checking stops at the first bad event, and only that one is reported (the frames still
    # open then say nothing more)
    (evented(("O", 0, 0), ("O", 2, 1)), ["profile 0 event 1: frame 2 out of range"]),
    (evented(("O", 0, 5), ("C", 0, 4)), ["profile 0 event 1: time goes backwards"]),
    (evented(("O", 0, 0), ("O", 1, 1), ("C", 0, 2)),
     ["profile 0 event 2: close does not match the innermost open frame"]),
    (evented(("O", 0, 0), ("O", 1, 1), ("C", 1, 2)), ["profile 0: 1 frame(s) never closed"]),
    ({"type": "sampled", "name": "s", "unit": "bytes", "startValue": 0, "endValue": 1,
      "samples": [[0], [1]], "weights": [3]}, ["profile 0: samples and weights differ in length"]),
    ({"type": "flame", "name": "s", "unit": "none", "startValue": 0, "endValue": 1},
     ["profile 0: unknown type 'flame'"]),
])
def test_speedscope_profile_problems(profile, problems):
    assert validate_speedscope(speedscope(profile)) == problems


def test_chrome_problems():
    assert validate_chrome([]) == ["traceEvents missing"]
    assert validate_chrome({"traceEvents": {}}) == ["traceEvents missing"]
    doc = {"traceEvents": [
        {"name": "ok", "ph": "X", "ts": 0, "dur": 1, "pid": 1, "tid": 1},
        {"name": "a", "ph": "Z", "pid": 1, "tid": 1},
        {"ph": "M", "pid": 1},
        {"name": "b", "ph": "B", "ts": "0", "pid": 1, "tid": 1},
        {"name": "c", "ph": "X", "ts": 1.5, "dur": -1, "pid": 1, "tid": 1},
        {"name": "d", "ph": "X", "ts": 1.5, "pid": 1, "tid": 1},
    ]}
    assert validate_chrome(doc) == [
        "event 1: bad ph 'Z'",
        "event 2: missing name", "event 2: missing tid",
        "event 3: ts missing",
        "event 4: dur missing or negative",
        "event 5: dur missing or negative",
    ]
