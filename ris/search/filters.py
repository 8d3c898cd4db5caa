"""Search filters as users give them (folders or URL prefixes, dates) made into a RowFilter."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from ris.errors import RisError
from ris.files.identity import normalise_path
from ris.index.base import RowFilter

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SearchFilterError(RisError):
    """A filter value that cannot be used (a date that does not parse, an empty prefix)."""


def path_prefix(text: str) -> str:
    """A folder as the prefix of the paths inside it (absolute, ending with a separator); a URL
    prefix (`scheme://...`) is kept as given."""
    if not text.strip():
        raise SearchFilterError("an empty folder or prefix matches nothing; leave it out")
    if "://" in text:
        return text
    folder = normalise_path(text)
    return folder if folder.endswith(os.sep) else folder + os.sep


def parse_date(text: str) -> datetime:
    """`YYYY-MM-DD` or an ISO date and time; without a time zone, local time."""
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise SearchFilterError(
            f"invalid date {text!r}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]"
        ) from None


def _nanoseconds(moment: datetime | str | None) -> int | None:
    """Nanoseconds since the epoch, exactly (to the microsecond a datetime holds)."""
    if moment is None:
        return None
    when = parse_date(moment) if isinstance(moment, str) else moment
    # A naive datetime is local time, like the file times `ls` shows.
    aware = when if when.tzinfo is not None else when.astimezone()
    return (aware - _EPOCH) // timedelta(microseconds=1) * 1000


def row_filter(
    under: Sequence[str] = (),
    modified_since: datetime | str | None = None,
    modified_before: datetime | str | None = None,
) -> RowFilter:
    """The filter for images under any of the `under` folders (or URL prefixes), whose file was
    modified at or after `modified_since` and before `modified_before`."""
    return RowFilter(
        prefixes=tuple(dict.fromkeys(path_prefix(text) for text in under)),
        modified_since_ns=_nanoseconds(modified_since),
        modified_before_ns=_nanoseconds(modified_before),
    )
