"""Exports of receipts, builds and rejections to the connected provider, exactly once: the worker claims
the export, searches the provider for its marker whenever an earlier attempt may have reached it, and
settles it posted, failed, waiting or pending again (DESIGN.md, "Exports")."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.contracts import ExportJob, PostedDocument
from shared.domain.books import cogs_company, cogs_day, of_company, record_day, sales_of_another
from shared.domain.catalog import ExportSettings
from shared.domain.connections import PROVIDER_LABELS, ProviderName
from shared.domain.inventory import BuildRecord, Product, Receipt, Rejection
from shared.domain.postings import (
    InventoryAdjustment,
    Journal,
    NothingToPost,
    Posting,
    PostingAccounts,
    adjustment_for,
    idempotency_key,
    posted_on,
)
from shared.errors import (
    AuthExpired,
    BadRequest,
    Conflict,
    InvalidFields,
    NotFound,
    ProviderError,
    ProviderNotConfigured,
    ProviderRejected,
    RateLimited,
    RefreshUnavailable,
    ServiceError,
    query_field,
)
from shared.lazy import lazy_module
from shared.model import Model
from shared.observability import logger
from shared.providers.base import AccountingProvider, Session
from shared.services import paging, sessions, tokens
from shared.services.paging import Page
from shared.services.queue import dead_letter, deliver, enqueue, export_id_for, max_receives
from shared.store import catalog as catalog_store
from shared.store import connections as connection_store
from shared.store import exports as store
from shared.store import inventory as inventory_store
from shared.store import settings as settings_store
from shared.store.connections import Connection
from shared.store.exports import ExportRow
from shared.store.exports import ExportView as ExportView  # the API answers with it
from shared.store.inventory import InventoryRecord

if TYPE_CHECKING:
    from shared.services import books, qbo_names, starting_quantities
    from shared.store import sales as sales_store
else:  # planning loads the ledger, sales and books code (and QBO's vendor rule): only exports that plan
    books, qbo_names = lazy_module("shared.services.books"), lazy_module("shared.services.qbo_names")
    starting_quantities = lazy_module("shared.services.starting_quantities")
    sales_store = lazy_module("shared.store.sales")  # the organisation's time zone dates an adjustment

LEASE_SECONDS = 60  # twice the export function's timeout: a live worker never loses its lease
# the export queue's VisibilityTimeout (template.yaml): a claim not settled by then lost its worker, and its
# message may be gone with it (SQS dead-letters a message after its fifth receive by itself)
ORPHANED_AFTER = timedelta(seconds=180)
BACKOFF_BASE = 30
BACKOFF_CAP = 900
MAX_VISIBILITY = 43_200  # SQS's longest visibility timeout
PLAN_TRIES = 3
# A 429 whose Retry-After is longer is not waited out in the worker: the record comes back after it (SQS
# visibility) while the rest of the batch (another organisation's, another provider's) goes on. Xero's
# minute limit answers up to 60 s (../shared/providers/xero.md "2. Rate limits"), more than the function's
# 30 s timeout.
RETRY_AFTER_LIMIT = 2.0
jitter: Callable[[float, float], float] = random.uniform  # the backoff's randomness (tests may pin it)


clock: Callable[[], datetime] = (
    tokens.utc_now  # when a worker runs; tests move it to let a crashed worker's lease run out
)


class RetryLater(ServiceError):
    """A retry can help; keep the message hidden ``delay`` seconds first."""

    retryable = True

    def __init__(self, message: str, *, delay: int) -> None:
        super().__init__(message)
        self.delay = delay


class ExportOutcome(Model):
    export_id: str
    status: str
    document_id: str | None = None


# ---- the queue --------------------------------------------------------------------------------------
def _dead_letter(job: ExportJob, export_id: str, reason: str) -> None:
    dead_letter(job.model_dump_json(), reason, export_id=export_id)
    store.mark_dead_lettered(job.organisation_id, export_id)


def _backoff(receive_count: int) -> int:
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, receive_count - 1))
    return int(jitter(delay / 2, delay))


# ---- the worker -------------------------------------------------------------------------------------
def _record(job: ExportJob) -> InventoryRecord:
    record = inventory_store.load_record(job.organisation_id, job.kind, job.record_id)
    if record is None:
        raise NotFound(f"the {job.kind} {job.record_id} is not recorded")
    return record


def _product_ids(record: InventoryRecord) -> list[str]:
    if isinstance(record, BuildRecord):
        return [record.build.product_id, *(c.product_id for c in record.components)]
    return [line.product_id for line in record.lines]


def _home_currency(
    organisation_id: str, name: ProviderName, api: AccountingProvider, session: Session
) -> str:
    known = store.home_currency(organisation_id, name, session.tenant_id)
    if known is None:
        known = api.home_currency(session)
        store.put_home_currency(organisation_id, name, session.tenant_id, known)
    return known


def _accounts(
    job: ExportJob, name: ProviderName, api: AccountingProvider, session: Session, chosen: ExportSettings
) -> PostingAccounts:
    return PostingAccounts(
        home_currency=_home_currency(job.organisation_id, name, api, session),
        company=session.tenant_id,
        **{role: chosen.account(role) for role in books.ROLES},
    )


class OtherCompanysSales(Exception):
    """A day's cost of goods sold of the sales of a company other than the one connected: it waits."""


def _posting(
    job: ExportJob,
    claimed: Claimed,
    name: ProviderName,
    api: AccountingProvider,
    session: Session,
) -> Posting:
    """The document this export posts: its stored plan when it has one (planned for this provider), else
    QBO inventory mode's adjustment, else the journal planned now on the books' running balances. The cost
    of goods sold of another company's sales (read before a switch) waits for that company."""
    if job.kind == "cogs" and sales_of_another(job.record_id, session.tenant_id):
        raise OtherCompanysSales(
            f"the cost of goods sold of the sales read from another company ({cogs_company(job.record_id)}), "
            "before the switch to this one, is posted there when it is connected again"
        )
    if claimed.plan is not None:
        if claimed.plan_provider != name:
            raise BadRequest(
                f"this export was planned for {PROVIDER_LABELS[claimed.plan_provider]} (as part of its "
                f"books) and the organisation is now connected to {PROVIDER_LABELS[name]}; it is not "
                "posted there"
            )
        if not of_company(claimed.plan_tenant, session.tenant_id):
            # its account (and item) ids are the company's before a switch: another account, or none, here
            kept = _kept_by_its_company(claimed.unsure, job.kind)
            again = "connect that company again to retry it"
            then = f"it {kept}: {again}" if kept else "retry it to plan it for this company"
            raise BadRequest(
                f"this export was planned for another {PROVIDER_LABELS[name]} company, before the switch to "
                f"this one, and is not posted here; {then}"
            )
        if claimed.plan_type == "adjustment":
            return InventoryAdjustment.model_validate_json(claimed.plan)
        return books.stored_journal(claimed.plan)
    chosen = settings_store.get_export_settings(job.organisation_id, name)
    if not chosen:
        raise BadRequest(
            f"no export settings for {PROVIDER_LABELS[name]}: choose the accounts in Settings -> "
            "Integrations, then retry"
        )
    if not chosen.for_company(session.tenant_id):
        raise BadRequest(
            f"the export accounts were chosen for another {PROVIDER_LABELS[name]} company, before the switch "
            "to this one: choose them again in Settings -> Integrations, then retry"
        )
    # the mode is fixed before the first plan in it: a save switching it meanwhile makes this one wait
    locked = chosen.planned_mode == chosen.mode or settings_store.lock_mode(
        job.organisation_id, name, chosen.mode
    )
    if not locked:
        raise RetryLater("the export settings changed while this export was planned", delay=BACKOFF_BASE)
    quantity_mode = name == "qbo" and chosen.quantity_mode
    if quantity_mode and job.kind == "cogs":
        # QBO inventory mode: QBO books cost of goods sold itself from its invoices (notes §inventory)
        raise NothingToPost("QuickBooks Online books cost of goods sold itself in inventory mode")
    accounts = _accounts(job, name, api, session, chosen)
    if not quantity_mode:

        def finish(journal: Journal, record: InventoryRecord | None) -> Journal:
            if name == "qbo" and isinstance(record, (Receipt, Rejection)):
                journal = qbo_names.with_vendor(job.organisation_id, journal, record)
            return posted_on(journal, claimed.post_on)

        return books.plan(
            job.organisation_id,
            job,
            export_id=claimed.export_id,
            owner=claimed.owner,
            provider=name,
            accounts=accounts,
            moment=claimed.moment,
            finish=finish,
        )
    record = _record(job)
    linked = catalog_store.get_products(job.organisation_id, sorted(set(_product_ids(record))))
    # the synced items QBO keeps no quantity of (an item not synced is taken as tracked: QBO decides)
    untracked = {
        i.item_id
        for i in catalog_store.get_provider_items(
            job.organisation_id,
            name,
            sorted({p.provider_links[name] for p in linked if name in p.provider_links}),
        )
        if not i.tracked
    }
    products = {
        p.product_id: Product(
            product_id=p.product_id,
            sku=p.sku,
            name=p.name,
            provider_item_id=p.provider_links.get(name),
            untracked=p.provider_links.get(name) in untracked,
        )
        for p in linked
    }
    for _ in range(PLAN_TRIES):  # again when the time zone is saved (or other plans commit) meanwhile
        zone = sales_store.business_zone(job.organisation_id)
        adjustment = posted_on(
            adjustment_for(record, accounts, products, marker=claimed.export_id, day=record_day(zone)),
            claimed.post_on,
        )
        # what QuickBooks held of each item before Partsemble's first adjustment of it, read before it posts
        starting_quantities.note_starting(job.organisation_id, api, session, adjustment, claimed.moment)
        try:
            stored = store.store_plan(
                job.organisation_id,
                claimed.export_id,
                owner=claimed.owner,
                plan=adjustment.model_dump_json(),
                provider=name,
                company=session.tenant_id,
                zone=zone,
            )
        except store.PlanAgain:
            continue
        if not stored:
            raise RetryLater("another worker took this export over", delay=LEASE_SECONDS)
        return adjustment
    raise RetryLater(
        "the organisation's time zone changed, or other exports were planned, as this one was planned",
        delay=BACKOFF_BASE,
    )


class Claimed(Model):
    """An export as this worker claimed it."""

    export_id: str
    owner: str
    moment: datetime
    plan: str | None = None
    plan_provider: ProviderName = "qbo"
    plan_tenant: str | None = None  # the company it was planned for (its accounts and items are that one's)
    plan_type: str = "journal"  # or "adjustment" (QBO inventory mode)
    created_at: str | None = None  # when the export was created: no attempt can have posted before it
    post_on: date | None = None  # a later date chosen for a document whose own date is locked
    unsure: bool = False  # an earlier attempt may have reached the provider it was planned for


class _Attempt:
    """One claim of an export (the job, its export id, the lease's owner, the claim's moment): whether
    something may already be in the provider, and what it posted."""

    def __init__(
        self, job: ExportJob, export_id: str, owner: str, moment: datetime, *, unsure: bool, provider: str
    ) -> None:
        self.job, self.export_id, self.owner, self.moment = job, export_id, owner, moment
        self.unsure = unsure
        self.provider = provider
        self.document: PostedDocument | None = None
        self.adopted = False
        self.planned = False  # this attempt has a plan (the document it posts is fixed, for its provider)
        self.writing = (
            False  # inside the provider write: an unexpected error there leaves the outcome unknown
        )
        self._search: Callable[[], PostedDocument | None] | None = None

    def found(self) -> bool:
        """Searches the provider for the marker (when something may be there); adopts what it finds."""
        if self.unsure and self._search is not None:
            self.document = self._search()
            self.adopted = self.document is not None
        return self.adopted

    def run(self, claimed: Claimed, attempt: int, name: ProviderName, connection: Connection) -> None:
        if connection.status == "expired" and connection.expired_reason:
            raise AuthExpired.from_stored(name, connection.expired_reason)
        if connection.status == "expired":
            raise AuthExpired(name, "the connection expired; reconnect")
        api, session = (
            tokens.provider(name),
            sessions.session_for(connection, retry_after_limit=RETRY_AFTER_LIMIT),
        )
        posting = _posting(self.job, claimed, name, api, session)
        self.planned = True
        since = datetime.fromisoformat(claimed.created_at) if claimed.created_at else claimed.moment
        self._search = lambda: api.find_posting(session, posting, since=since, until=claimed.moment)
        if self.found():
            return
        # not there: nothing reached the provider before. A new key per attempt, as Xero replays a remembered
        # error to a repeated key; from here until the answer, the outcome is unknown.
        key = f"{idempotency_key(posting)}:{attempt}"
        self.unsure = self.writing = True
        try:
            if isinstance(posting, Journal):
                self.document = api.post_journal(session, posting, idempotency_key=key)
            else:
                self.document = api.post_inventory_adjustment(session, posting, idempotency_key=key)
        except (RateLimited, AuthExpired, ProviderRejected):
            self.unsure = self.writing = False  # a refusal: nothing was written, before or now
            raise
        except ServiceError:
            self.writing = False  # an outage or timeout: unsure stays, the next claim searches first
            raise
        self.writing = False


def export_one(job: ExportJob, *, receive_count: int = 1, now: datetime | None = None) -> ExportOutcome:
    """Posts the record the message names, or settles why not. Raises ``RetryLater`` only when the message
    should come back (an outage, a rate limit, another worker mid-post); everything else ends here."""
    moment = now or clock()
    organisation = job.organisation_id
    export_id = export_id_for(organisation, job.kind, job.record_id)
    owner = str(uuid.uuid4())
    old = store.claim(
        organisation,
        export_id,
        owner=owner,
        now=int(moment.timestamp()),
        lease_s=LEASE_SECONDS,
        at=moment.isoformat(),
        orphaned_at=(moment + ORPHANED_AFTER).isoformat(),
    )
    if old is None:
        return _unclaimed(job, export_id, moment)
    connection = sessions.in_use(organisation)
    attempt = _Attempt(
        job,
        export_id,
        owner,
        moment,
        unsure=old.unsure or old.status == "posting",
        provider=connection.provider if connection else "none",
    )
    if connection is None:  # disconnected (or never connected): connecting resumes it (resume_waiting)
        return _wait(attempt, None, "this organisation is not connected to QuickBooks Online or Xero")
    try:
        claimed = Claimed(
            export_id=export_id,
            owner=owner,
            moment=moment,
            plan=old.plan,
            plan_provider=old.plan_provider or connection.provider,
            plan_tenant=old.plan_tenant,
            plan_type=old.plan_type,
            created_at=old.created_at or None,
            post_on=old.post_on,
            unsure=attempt.unsure,
        )
        attempt.run(claimed, old.attempts + 1, connection.provider, connection)
    except NothingToPost as err:
        return _skip(attempt, err.message)
    except AuthExpired as err:
        if old.plan is None and not attempt.planned:
            # nothing is planned for (let alone written to) this provider: like an export recorded while
            # nothing was connected, whatever the organisation connects next posts it (the same provider
            # again, or the other one if it moves there); bound to this one, it waited for it for ever
            attempt.provider = "none"
        return _wait(attempt, connection, err.message, recheck=True)
    except OtherCompanysSales as err:
        attempt.provider = "none"  # whatever is connected next tries it again (that company posts it)
        return _wait(attempt, connection, str(err))
    except ProviderNotConfigured as err:
        # the refresh refused this deployment's client id/secret (invalid_client): an operator's fix, which
        # the connection's check notes and tries each tick; its first check that refreshes sends this on
        return _wait(attempt, connection, err.message, recheck=True)
    except RefreshUnavailable as err:
        if receive_count >= max_receives():  # the token endpoint is down for long: no reason to give up
            return _wait(attempt, connection, err.message, recheck=True)
        return _retry_or_give_up(attempt, err, receive_count)
    except ServiceError as err:
        if err.retryable or (isinstance(err, ProviderError) and not isinstance(err, ProviderRejected)):
            return _retry_or_give_up(attempt, err, receive_count)
        return _fail(attempt, err.message)
    except Exception as err:  # a bug or an AWS hiccup: settle the claim, never leave it `posting`
        if attempt.writing:
            raise  # like a crash mid-write: the lease runs out and the next claim looks for the marker
        logger.exception("export attempt failed unexpectedly", extra={"export_id": export_id})
        unexpected = ServiceError(f"an unexpected error occurred ({type(err).__name__}); it has been logged")
        return _retry_or_give_up(attempt, unexpected, receive_count)
    return _posted(attempt)


# characters of an export's reason kept: a reason can name every line of a 500-line receipt (~65,000), and
# GET /exports answers up to 500 exports a page within Lambda's 6 MB
MAX_ERROR = 1_000


def _settle(attempt: _Attempt, status: str, **fields: Any) -> bool:
    error = fields.get("last_error")
    if error is not None and len(error) > MAX_ERROR:
        fields["last_error"] = error[: MAX_ERROR - 1] + "\u2026"
    return store.settle(
        attempt.job.organisation_id,
        attempt.export_id,
        owner=attempt.owner,
        status=status,
        fields={
            **fields,
            "unsure": attempt.unsure,
            "provider": attempt.provider,
            "updated_at": attempt.moment.isoformat(),
        },
    )


def _posted(attempt: _Attempt) -> ExportOutcome:
    document, export_id = attempt.document, attempt.export_id
    assert document is not None
    _settle(
        attempt,
        "posted",
        document_id=document.document_id,
        document_type=document.document_type,
        document_link=document.link,
        adopted=attempt.adopted,
        last_error=None,
        posted_at=attempt.moment.isoformat(),
    )
    logger.info("export posted", extra={"export_id": export_id, "adopted": attempt.adopted})
    return ExportOutcome(export_id=export_id, status="posted", document_id=document.document_id)


def _skip(attempt: _Attempt, reason: str) -> ExportOutcome:
    """Nothing to post (a zero-value event, or COGS that QBO books itself): settled, never dead-lettered."""
    _settle(attempt, "skipped", last_error=reason)
    logger.info("export skipped", extra={"export_id": attempt.export_id, "reason": reason})
    return ExportOutcome(export_id=attempt.export_id, status="skipped")


def _unclaimed(job: ExportJob, export_id: str, moment: datetime) -> ExportOutcome:
    """Why the export can't be claimed: it doesn't exist, it's settled (a repeated delivery: nothing to do,
    no provider call), or another worker holds it."""
    current = store.get_export(job.organisation_id, export_id)
    if current is None:
        _dead_letter(job, export_id, "no such record: nothing to export")
        return ExportOutcome(export_id=export_id, status="missing")
    if current.status == "posting":  # come back once the other worker's lease has run out
        wait = max(1, current.lease_until - int(moment.timestamp()) + 1)
        raise RetryLater("another worker is posting this export", delay=wait)
    if current.status == "failed" and not current.dead_lettered:
        _dead_letter(job, export_id, current.last_error or "failed")
    return ExportOutcome(export_id=export_id, status=current.status, document_id=current.document_id)


def _fail(attempt: _Attempt, reason: str) -> ExportOutcome:
    if _settle(attempt, "failed", last_error=reason, dead_lettered=False):
        logger.warning("export failed", extra={"export_id": attempt.export_id, "reason": reason})
        _dead_letter(attempt.job, attempt.export_id, reason)
    return ExportOutcome(export_id=attempt.export_id, status="failed")


def _queued_anew(job: ExportJob, err: RateLimited) -> bool:
    try:
        enqueue(job, delay_seconds=int(err.retry_after) + 1)
    except Exception:  # the queue is unreachable: the export fails with the rate limit as its reason
        logger.warning("a rate-limited export could not be queued again", exc_info=True)
        return False
    return True


def _retry_or_give_up(attempt: _Attempt, err: ServiceError, receive_count: int) -> ExportOutcome:
    most = max_receives()
    if receive_count >= most and isinstance(err, RateLimited) and _queued_anew(attempt.job, err):
        # the provider's rate limit is no reason to give up: a new message, after its Retry-After
        _settle(attempt, "pending", last_error=err.message)
        return ExportOutcome(export_id=attempt.export_id, status="pending")
    if receive_count >= most:  # SQS would move it to the DLQ silently: settle it here instead
        try:
            if attempt.found():  # a last look, so that a write that did commit is not reported failed
                return _posted(attempt)
        except ServiceError:
            pass  # the reason stays the write's own failure
        return _fail(attempt, f"gave up after {receive_count} attempts: {err.message}")
    _settle(attempt, "pending", last_error=err.message)
    delay = _backoff(receive_count)
    if isinstance(err, RateLimited):
        delay = max(delay, int(err.retry_after) + 1)
    raise RetryLater(err.message, delay=min(delay, MAX_VISIBILITY)) from err


def _wait(
    attempt: _Attempt, connection: Connection | None, reason: str, *, recheck: bool = False
) -> ExportOutcome:
    """The export waits for its connection. ``recheck``: the provider refused the connection's tokens, or its
    token endpoint did not answer their refresh through all the attempts; a connection not marked expired
    (a 401 even with the token just refreshed: QBO's authentication falters at times, minimul/qbo_api#96)
    is marked for its next scheduled check, which resumes the export once the connection is proven to work
    (refreshed), or expires it (reconnecting then resumes the export)."""
    _settle(attempt, "waiting", last_error=f"waiting for the connection to be restored: {reason}")
    job, export_id = attempt.job, attempt.export_id
    # Reconnected while this attempt ran (with the old tokens)? Then resume_waiting may have run already.
    now = sessions.in_use(job.organisation_id)
    if now and now.status == "connected" and (connection is None or now.grant_id != connection.grant_id):
        _resume(job.organisation_id, export_id, job, attempt.moment)
    elif recheck and now and now.status == "connected" and now.grant_id and not now.switching_from:
        try:
            connection_store.mark_resume_pending(job.organisation_id, now.provider, grant_id=now.grant_id)
        except Exception:  # the export is waiting: a retry of it resumes it
            logger.warning("a waiting export's connection was not marked for its check", exc_info=True)
    return ExportOutcome(export_id=export_id, status="waiting")


def _resume(organisation_id: str, export_id: str, job: ExportJob, moment: datetime) -> ExportRow | None:
    """A waiting export pending again, as written (None: it was not waiting)."""
    resumed = store.requeue(organisation_id, export_id, from_statuses=("waiting",), at=moment.isoformat())
    if resumed is not None:
        deliver(job)  # back in the outbox first: an SQS outage only delays it (the sweep queues it)
    return resumed


def resume_waiting(organisation_id: str, provider: str, *, now: datetime | None = None) -> int:
    """Re-queues the organisation's exports that waited for this provider's connection; how many."""
    moment = now or clock()
    resumed = 0
    for item in store.list_exports(organisation_id, status="waiting"):
        if item.provider not in (provider, "none"):
            continue
        job = ExportJob(organisation_id=organisation_id, kind=item.kind, record_id=item.record_id)
        resumed += _resume(organisation_id, item.export_id, job, moment) is not None
    if resumed:
        logger.info("waiting exports resumed", extra={"organisation_id": organisation_id, "count": resumed})
    return resumed


def resume_pending(organisation_id: str, provider: ProviderName, grant_id: str, *, now: datetime) -> int:
    """Resumes what waited for a connection just made and takes its ``resume_pending`` mark off; how many.
    The connect does it, and the connection's next scheduled check again when the connect's attempt failed
    (an outage then): an export never stays waiting while its connection is connected. The mark is taken
    off only if no export marked it again after it was read (one that settled as waiting after the list
    keeps its mark, for the next check)."""
    current = connection_store.get_connection(organisation_id, provider)
    seen = current.resume_mark if current else None
    resumed = resume_waiting(organisation_id, provider, now=now)
    connection_store.clear_resume_pending(organisation_id, provider, grant_id=grant_id, seen=seen)
    return resumed


# ---- the API ----------------------------------------------------------------------------------------
class ExportPage(Page):
    """A page of the organisation's exports, newest first (by creation, then id)."""

    items: list[ExportView]


def list_exports(organisation_id: str, limit: int, cursor: str | None = None) -> ExportPage:
    items, last = store.export_page(
        organisation_id, limit, paging.position_of("exports", organisation_id, cursor)
    )
    return ExportPage(items=items, next_cursor=paging.next_cursor("exports", organisation_id, last))


def retry(
    organisation_id: str, export_id: str, *, post_on: date | None = None, now: datetime | None = None
) -> ExportView:
    """Re-queues a failed export (or a pending one whose message was lost). Safe: the worker searches for
    the marker first whenever an earlier attempt may have reached the provider, so it cannot post twice.
    ``post_on`` dates its document on a later day, when the provider has locked the period of its own date
    (Xero's lock dates, QBO's closing date): the person decides, the service never re-dates by itself."""
    moment = now or clock()
    item = store.get_export(organisation_id, export_id)
    if item is None:
        raise NotFound(f"no export {export_id}")
    meant = item.attempted_provider
    current = sessions.in_use(organisation_id)
    if item.status == "posted":
        if post_on is not None:  # posted again as it was planned; a refusal for a locked period is retried
            raise Conflict(
                f"export {export_id} is posted ({item.document_type} {item.document_id}); its date can't "
                "change. Retry it as it is (if its period is locked, retry with a later date once that fails)"
            )
        return _post_again(organisation_id, item, current, moment)
    if meant and current and current.provider != meant:  # never silently to another provider's books
        raise Conflict(
            f"export {export_id} was for {PROVIDER_LABELS[meant]} and this organisation is now connected to "
            f"{PROVIDER_LABELS[current.provider]}; it is not posted there. Reconnect "
            f"{PROVIDER_LABELS[meant]} to retry it"
        )
    stale = item.status == "posting" and item.lease_until < int(moment.timestamp())
    if stale:  # its worker died: a new message lets the next worker claim it (and look for the marker first)
        enqueue(ExportJob(organisation_id=organisation_id, kind=item.kind, record_id=item.record_id))
        return item.view()
    if item.status == "posting":
        raise Conflict(f"export {export_id} is posting; it will finish by itself")
    # connected meanwhile, and not resumed then (the connect's resume failed): it goes on now
    for_current = (
        current is not None
        and item.provider in (current.provider, "none")
        and not (item.kind == "cogs" and sales_of_another(item.record_id, current.tenant_id or ""))
    )
    if item.status == "waiting" and for_current and current is not None and current.status == "connected":
        job = ExportJob(organisation_id=organisation_id, kind=item.kind, record_id=item.record_id)
        # answered as written: a read failing after it must not say nothing was changed (503)
        resumed = _resume(organisation_id, export_id, job, moment)
        return (resumed or store.get_export(organisation_id, export_id) or item).view()
    if item.status == "waiting":  # its reason says what it waits for: connecting (that company) resumes it
        raise Conflict(
            f"export {export_id} is {item.last_error or 'waiting for a connection'}; no retry is needed"
        )
    if item.status == "skipped":  # a later change of its values is posted by a true-up, not by it
        reason = (item.last_error or "nothing to post").removeprefix("nothing to post: ")
        raise Conflict(f"export {export_id} had nothing to post ({reason}); there is nothing to retry")
    # planned for the company before a switch: it was never in this one (but a day's cost of goods sold of
    # that company's sales goes back to it: its plan stays while unsure)
    elsewhere = bool(current and not of_company(item.plan_tenant, current.tenant_id or "")) and not (
        item.kind == "cogs" and cogs_company(item.record_id) == item.plan_tenant
    )
    kept = _kept_by_its_company(item.unsure, item.kind)
    if elsewhere and item.plan is not None and kept:
        label = PROVIDER_LABELS[current.provider] if current else "provider"
        raise Conflict(
            f"export {export_id} was planned for another {label} company, before the switch to this one, and "
            f"{kept}; it is not posted here. Connect that company again to retry it (the retry there finds "
            "it or posts it)"
        )
    # failed, and known never to have reached the provider (refused): planned anew, for this company
    replan = item.status == "failed" and item.plan is not None and not item.unsure
    if post_on is not None:
        _check_post_on(organisation_id, item, post_on, replan, moment)
    at, later = moment.isoformat(), post_on.isoformat() if post_on else None
    if replan and item.plan_type == "adjustment":  # never reached the provider: build it anew
        requeued = store.requeue(
            organisation_id, export_id, from_statuses=("failed",), at=at, post_on=later, forget=True
        )
    elif replan and item.kind != "trueup":  # never reached the provider: plan it on today's values
        connected = (current.tenant_id or "") if current else ""
        requeued = books.unplan(organisation_id, item, connected, at=at, post_on=later)
    else:  # its plan kept (a true-up's: dated later in it)
        redated = None
        if replan and post_on is not None and item.plan:
            redated = posted_on(books.stored_journal(item.plan), post_on).model_dump_json()
        requeued = store.requeue(
            organisation_id,
            export_id,
            from_statuses=("failed", "pending"),
            at=at,
            post_on=later,
            plan=redated,
        )
    return _queued(organisation_id, item, requeued)


# a document type (``PostedDocument.document_type``) as a person reads it
DOCUMENT_WORDS = {
    "JournalEntry": "journal entry",
    "InventoryAdjustment": "inventory adjustment",
    "ManualJournal": "manual journal",
}


def _post_again(
    organisation_id: str, item: ExportRow, current: Connection | None, moment: datetime
) -> ExportView:
    """A posted document deleted in QuickBooks (or a journal voided in Xero) since, posted again as it was
    planned: the books (or QuickBooks' quantities) already hold its values, so only the document is made anew
    (its worker searches for the marker first). Refused while the provider still has it, or when the company
    it is in is not connected."""
    export_id, document = item.export_id, f"{item.document_type} {item.document_id}"
    if (
        not item.document_id
        or current is None
        or current.status != "connected"
        or current.provider != item.plan_provider
        or not of_company(item.plan_tenant, current.tenant_id or "")
    ):
        raise Conflict(f"export {export_id} is already posted ({document})")
    api, session = tokens.provider(current.provider), sessions.session_for(current)
    if item.document_id not in api.documents_gone(session, item.document_type or "", [item.document_id]):
        raise Conflict(f"export {export_id} is already posted ({document}), and it is still there")
    label = PROVIDER_LABELS[current.provider]
    what = DOCUMENT_WORDS.get(item.document_type or "", "document")
    gone = store.Gone(item.document_id, f"its {what} {item.document_id} was deleted or voided in {label}")
    requeued = store.requeue(
        organisation_id, export_id, from_statuses=("posted",), at=moment.isoformat(), gone=gone
    )
    if requeued is not None:
        logger.info("posted again", extra={"export_id": export_id, "gone": item.document_id})
    return _queued(organisation_id, item, requeued)


def _queued(organisation_id: str, item: ExportRow, requeued: ExportRow | None) -> ExportView:
    """A retried export as it is now: queued as written (its answer reads nothing more, so a store that fails
    now cannot turn a retry already made into a 503), or as another request left it."""
    if requeued is not None:
        deliver(ExportJob(organisation_id=organisation_id, kind=item.kind, record_id=item.record_id))
        return requeued.view()
    return (store.get_export(organisation_id, item.export_id) or item).view()


def _kept_by_its_company(unsure: bool, kind: str) -> str | None:
    """Why an export planned for the company before a switch is retried only there (None: it never reached
    that company, so it may be planned anew for this one). One that may be in that company (a timeout, a lost
    answer, a 5xx) would be in both, and that company's books would drop a journal its ledger holds; a
    true-up corrects that company's books, nobody else's."""
    if unsure:
        return "may have reached it"
    if kind == "trueup":
        return "corrects what was posted there"
    return None


def _check_post_on(
    organisation_id: str, item: ExportRow, post_on: date, replan: bool, moment: datetime
) -> None:
    """A later date only for a document that is built anew (it never reached the provider), and only a day
    after its own date and no later than tomorrow."""
    if item.plan is not None and not replan:
        raise Conflict(
            f"export {item.export_id} may have reached the provider; its date can't change. Retry it as it is"
        )
    zone = sales_store.business_zone(organisation_id)
    if item.kind == "cogs":
        own = cogs_day(item.record_id)
    elif item.kind == "trueup":
        own = date.fromisoformat(item.happened_at[:10])
    else:
        job = ExportJob(organisation_id=organisation_id, kind=item.kind, record_id=item.record_id)
        own = books.describe(job, books.record_of(organisation_id, job), record_day(zone))[0]
    latest = record_day(zone)(moment) + timedelta(days=1)  # tomorrow where the organisation is
    if not own < post_on <= latest:
        problem = (
            f"must be after the document's own date {own.isoformat()} and no later than {latest.isoformat()}"
        )
        raise InvalidFields(f"post_on: {problem}", [{"field": query_field("post_on"), "problem": problem}])
