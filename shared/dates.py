"""The sane window of dates a request may carry (a receipt, a build, a sales-tracking start), shared by the
API's bodies and the services' requests without loading either."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field

DATES_BACK = timedelta(days=3653)  # 10 years before today
DATES_AHEAD = timedelta(days=366)  # 1 year after today


def _window(today: date) -> tuple[date, date]:
    return today - DATES_BACK, today + DATES_AHEAD


def _outside(earliest: date, latest: date) -> ValueError:
    return ValueError(f"must be between {earliest.isoformat()} and {latest.isoformat()}")


def _recent_day(value: date) -> date:
    earliest, latest = _window(datetime.now(UTC).date())
    if not earliest <= value <= latest:
        raise _outside(earliest, latest)
    return value


def _recent_moment(value: datetime) -> datetime:
    earliest, latest = _window(datetime.now(UTC).date())
    start = datetime.combine(earliest, datetime.min.time(), UTC)
    end = datetime.combine(latest, datetime.max.time(), UTC)
    try:
        inside = start <= value <= end
    except OverflowError:  # an offset that moves year 1 or 9999 out of range is far outside anyway
        inside = False
    if not inside:
        raise _outside(earliest, latest)
    return value


DATE_RULE = "within 10 years before today and 1 year after it"
RecentDate = Annotated[date, AfterValidator(_recent_day), Field(description=f"a date {DATE_RULE}")]
RecentDatetime = Annotated[
    AwareDatetime,
    AfterValidator(_recent_moment),
    Field(description=f"a date and time with its UTC offset, {DATE_RULE}"),
]
