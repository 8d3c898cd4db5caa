"""The JSON shapes of `query search --json`, `query duplicates --json` and of the HTTP API.

FastAPI shows the HTTP ones on the service's OpenAPI page (`/docs`); the CLI's output is checked
against these models by the tests. Ids are strings over HTTP (63-bit integers are beyond what a
JavaScript number holds exactly) and integers on the command line.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Timings(_Strict):
    """Milliseconds per step of one search (a batch's embedding and search shared evenly)."""

    embed: float
    search: float
    verify: float
    total: float


class _Hit(_Strict):
    rank: int = Field(
        ge=1,
        description="verified hits first; when none verified, a hit whose part under the query "
        "the model scores nearer it than any whole hit (RIS_VERIFY_REGION), or else the hit one "
        "picture with the query frame to frame (RIS_VERIFY_FRAMES), or else a pasted picture's "
        "far nearer hit (RIS_PASTED_NEAREST), if any; then by score",
    )
    path: str
    score: float = Field(description="inner product of unit vectors: 1 is the same picture")
    inliers: int | None = Field(
        description="local features agreeing under one geometry; null when not checked"
    )
    verified: bool = Field(
        description="verified as a crop, resize or edit of the query: at least 10 local features "
        "agree, or 4-9 and the two are one picture pixel for pixel"
    )


class CliHit(_Hit):
    id: int


class HttpHit(_Hit):
    id: str


class CliAnswer(_Strict):
    """One query of `query search --json`: its results, or why it could not be read."""

    query: str
    results: list[CliHit] | None = None
    timings_ms: Timings | None = None
    error: str | None = None


class HttpSearchResponse(_Strict):
    """What `POST /search` returns."""

    results: list[HttpHit]
    timings_ms: Timings


class _DuplicateImage(_Strict):
    path: str
    score: float = Field(description="similarity to the group's first image (the one to keep)")
    width: int | None = Field(description="pixels across; null when the file cannot be read")
    height: int | None


class CliDuplicateImage(_DuplicateImage):
    id: int


class HttpDuplicateImage(_DuplicateImage):
    id: str


class CliDuplicateGroup(_Strict):
    """One group of `query duplicates --json`: the image to keep (most pixels) first."""

    group: int = Field(ge=1)
    images: list[CliDuplicateImage]


class HttpDuplicateGroup(_Strict):
    group: int = Field(ge=1)
    images: list[HttpDuplicateImage]


class HttpDuplicatesResponse(_Strict):
    """What `GET /duplicates` returns: the groups, and how they were found."""

    rows: int = Field(description="images compared")
    min_score: float
    verify: bool
    candidate_pairs: int
    shared_feature_pairs: int = Field(
        description="candidate pairs found by the local features they share, not by their "
        "vectors (the original of a small crop)"
    )
    verified_pairs: int
    accepted_pairs: int
    compared_pairs: int = Field(
        description="verified pairs held only by features recurring across many pictures "
        "(a template, a logo, the page around a pasted picture), compared pixel by pixel"
    )
    weak_pairs: int = Field(
        description="pairs too few local features agreed on to verify (a smooth wallpaper, a "
        "flat drawing), compared pixel by pixel"
    )
    region_pairs: int = Field(
        description="of those, pairs the pixels left apart that the model took for a copy and "
        "its original by the part of one picture the match lays under the other"
    )
    reshaped_pairs: int = Field(
        description="pairs otherwise left apart that matched once the picture of fewer pixels "
        "was stretched to the other's aspect ratio (a copy squeezed or stretched)"
    )
    framed_pictures: int = Field(
        description="pictures of verified pairs holding a pasted picture (a screenshot's "
        "photo), whose page's features counted as recurring"
    )
    pasted_pictures: int = Field(
        description="pictures pasted in the collection's pictures (a screenshot's photo), cut "
        "out and checked as pictures of their own"
    )
    read_pictures: int = Field(description="pictures whose local features were extracted")
    cached_pictures: int = Field(
        description="pictures whose local features were kept from an earlier run, not read"
    )
    groups: list[HttpDuplicateGroup]
    seconds: dict[str, float]


class HttpDuplicateRun(_Strict):
    """A run of `POST /duplicates/runs`: what it was asked, how far it is, and its groups once
    done."""

    id: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    min_score: float | None = Field(description="as asked; the result gives the one used")
    verify: bool
    under: str
    shared_features: bool | None
    stage: str = Field(description="what it is doing now, as the CLI's progress bars name it")
    done: int = Field(description="items of the stage done")
    total: int = Field(description="items in the stage")
    seconds: float = Field(description="how long it has run (0 while queued)")
    asked_at: float = Field(description="when it was asked (seconds since the epoch)")
    error: str = Field(description="why it failed")
    result: HttpDuplicatesResponse | None = Field(description="the groups, once done")
