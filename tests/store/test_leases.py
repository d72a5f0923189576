"""``LeaseBook``: local admission and settlement from quota leases, and what each exchange sends
(no Redis here; ``test_leased_counters`` runs the book against Redis)."""

from __future__ import annotations

import uuid

from tollgate.store.counters import (
    BudgetCheck,
    CounterAdmission,
    Reservation,
    Settlement,
    SlotCheck,
    SpendAdd,
    WindowAdjust,
    WindowCheck,
)
from tollgate.store.lease_counters import LEASE_SHARE, MIN_MISSES, Exchange
from tollgate.store.leases import LeaseBook

T0 = 1_700_000_000.0
BUDGET = BudgetCheck("s:key:k:day", "held:key:k", 10**12)


def chain(now: float, *, tokens: int = 30, cost: int = 1000, limit: int = 10**12) -> CounterAdmission:
    """A key with an rpm and a tpm window, a parallel slot and a budget with its reservation."""
    return CounterAdmission(
        now, uuid.uuid4().hex,
        budgets=(BudgetCheck(BUDGET.spend_key, BUDGET.reserve_key, limit),),
        windows=(WindowCheck("w:rpm", 10**9, 1), WindowCheck("w:tpm", 10**9, tokens)),
        slots=(SlotCheck("slot:k", 10**6),),
        reservations=(Reservation("held:key:k", cost),),
        cost=cost,
    )


def granting(exchange: Exchange, totals: dict[str, int] | None = None) -> list[int]:
    """Redis' reply when it grants every ask, reporting each window's total before its grant as
    ``totals`` says (0 when it does not)."""
    reply = [0]
    for key, *_, ask in exchange.window_asks:
        reply += [ask, (totals or {}).get(key, 0)]
    reply += [ask for *_, ask in exchange.slot_asks]
    reply += [ask for _, ask, _ in exchange.held_asks]
    return reply


def leased_book(now: float = T0) -> LeaseBook:
    """A book whose counters were asked for ``MIN_MISSES`` times and then granted."""
    book = LeaseBook()
    for _ in range(MIN_MISSES):
        assert book.admit(chain(now)) is None
    exchange = book.take(now + 0.01)
    book.apply(exchange, granting(exchange))
    return book


def test_nothing_is_admitted_locally_before_a_grant_and_quiet_counters_are_not_leased() -> None:
    book = LeaseBook()
    for _ in range(MIN_MISSES - 1):
        assert book.admit(chain(T0)) is None
    exchange = book.take(T0 + 0.01)
    assert not (exchange.window_asks or exchange.slot_asks or exchange.held_asks)
    assert book.admit(chain(T0 + 0.02)) is None  # the eighth request of the second
    exchange = book.take(T0 + 0.03)
    assert {key for key, *_ in exchange.window_asks} == {"w:rpm", "w:tpm"}
    assert [(key, limit) for key, limit, _ in exchange.slot_asks] == [("slot:k", 10**6)]
    assert [(key, checks) for key, _, checks in exchange.held_asks] == [
        ("held:key:k", ((BUDGET.spend_key, BUDGET.limit),))
    ]
    assert all(second == int(T0) for _, _, second, _ in exchange.window_asks)


def test_a_granted_book_admits_and_settles_locally_and_the_next_exchange_sends_what_is_owed() -> None:
    book = leased_book()
    admission = chain(T0 + 0.1)
    result = book.admit(admission)
    assert result is not None and result.admitted and result.via == "lease"
    assert book.slots["slot:k"].used == 1
    assert book.held["held:key:k"].used == 1000
    settled = Settlement(
        T0 + 0.2, admission.member, windows=(WindowAdjust("w:tpm", int(T0), -12),),
        spends=(SpendAdd(BUDGET.spend_key, 700), SpendAdd("s:key:k:month", 700)),
    )
    assert book.settle(settled)
    assert not book.settle(settled)  # once
    assert book.slots["slot:k"].used == 0
    assert book.held["held:key:k"].used == 700  # the spend keeps its place until it is sent
    assert book.pending_spend(BUDGET.spend_key) == 700
    exchange = book.take(T0 + 0.3)
    assert exchange.corrections == [("w:tpm", int(T0), -12)]
    assert sorted(exchange.spends) == [(BUDGET.spend_key, 700), ("s:key:k:month", 700)]
    returned = dict(exchange.returns)
    assert returned["held:key:k"] >= 700  # the spend leaves the lease as it joins the totals
    assert book.held["held:key:k"].used == 0 and book.pending_spend(BUDGET.spend_key) == 0


def test_a_window_lease_serves_only_its_second_and_its_unused_units_go_back() -> None:
    book = leased_book()
    rpm = book.windows["w:rpm"].leases[int(T0)]
    left = rpm[0]
    assert book.admit(chain(T0 + 0.5)) is not None
    assert rpm[0] == left - 1
    assert book.admit(chain(T0 + 1.1)) is None  # the next second has no lease yet
    exchange = book.take(T0 + 1.2)
    assert ("w:rpm", int(T0), -(left - 1)) in exchange.corrections
    assert int(T0) not in book.windows["w:rpm"].leases


def test_the_next_seconds_lease_is_asked_for_before_it_starts() -> None:
    book = leased_book()
    book.admit(chain(T0 + 0.5))
    exchange = book.take(T0 + 0.97)
    assert {second for _, _, second, _ in exchange.window_asks} == {int(T0) + 1}


def test_a_request_the_leases_cannot_cover_goes_to_redis() -> None:
    book = leased_book()
    held = book.held["held:key:k"]
    assert book.admit(chain(T0 + 0.1, cost=held.granted + 1)) is None
    tpm = book.windows["w:tpm"].leases[int(T0)][0]
    assert book.admit(chain(T0 + 0.1, tokens=tpm + 1)) is None
    assert book.admit(chain(T0 + 0.1, limit=BUDGET.limit - 1)) is None  # a budget no grant checked
    slot = book.slots["slot:k"]
    for _ in range(slot.granted):
        assert book.admit(chain(T0 + 0.1, cost=0)) is not None
    assert book.admit(chain(T0 + 0.1, cost=0)) is None


def test_fallback_groups_and_soft_budget_totals_always_go_to_redis() -> None:
    book = LeaseBook()
    for _ in range(2 * MIN_MISSES):
        optional = CounterAdmission(T0, uuid.uuid4().hex, windows=(WindowCheck("w:fb", 10**9, 1, group=1),))
        soft = CounterAdmission(T0, uuid.uuid4().hex, budgets=(BudgetCheck("s:soft", "held:x", -1),))
        assert book.admit(optional) is None and book.admit(soft) is None
    assert not book.busy


def test_a_replica_swept_for_dead_drops_its_slot_and_cost_leases() -> None:
    book = leased_book()
    assert book.admit(chain(T0 + 0.05)) is not None
    exchange = book.take(T0 + 0.1)
    nothing = [0] * (2 * len(exchange.window_asks) + len(exchange.slot_asks) + len(exchange.held_asks))
    book.apply(exchange, [1, *nothing])  # the sweep gave this replica's leases back
    assert book.slots["slot:k"].granted == 0 and book.held["held:key:k"].granted == 0
    assert book.admit(chain(T0 + 0.2)) is None


def test_an_exchange_applied_twice_grants_nothing_the_second_time() -> None:
    book = LeaseBook()
    for _ in range(MIN_MISSES):
        book.admit(chain(T0))
    exchange = book.take(T0 + 0.01)
    book.apply(exchange, [2])
    assert book.admit(chain(T0 + 0.02)) is None
    assert book.slots["slot:k"].granted == 0


def test_a_final_exchange_gives_every_lease_back() -> None:
    book = leased_book()
    slot, held = book.slots["slot:k"].granted, book.held["held:key:k"].granted
    rpm = book.windows["w:rpm"].leases[int(T0)][0]
    exchange = book.take(T0 + 0.2, final=True)
    assert exchange.final and not (exchange.window_asks or exchange.slot_asks or exchange.held_asks)
    assert dict(exchange.returns) == {"slot:k": slot, "held:key:k": held}
    assert ("w:rpm", int(T0), -rpm) in exchange.corrections
    assert not book.busy


def test_leases_ask_for_a_small_share_of_the_headroom() -> None:
    # The grant rule itself lives in Redis (ask × share ≤ headroom); the book asks in proportion
    # to demand, so a quiet counter's ask is tiny next to a large limit.
    book = leased_book()
    exchange = book.take(T0 + 0.1)
    for _, limit, _, ask in exchange.window_asks:
        assert ask * LEASE_SHARE <= limit


def test_rate_headers_of_leased_requests_count_use_not_leased_units() -> None:
    book = LeaseBook()
    for _ in range(MIN_MISSES):
        book.admit(chain(T0))
    exchange = book.take(T0 + 0.01)
    book.apply(exchange, granting(exchange, {"w:rpm": 100}))  # 100 units before this grant
    first = book.admit(chain(T0 + 0.1))
    second = book.admit(chain(T0 + 0.2))
    assert first is not None and second is not None
    assert (first.used[0], second.used[0]) == (100, 101)  # rpm: one more per request
    # The next second's lease, granted while this second's is still partly unused: Redis' total
    # counts that unused part, the headers do not.
    exchange = book.take(T0 + 0.97)
    left = book.windows["w:rpm"].leases[int(T0)][0]
    book.apply(exchange, granting(exchange, {"w:rpm": 102 + left}))
    third = book.admit(chain(T0 + 0.98))
    assert third is not None and third.used[0] == 102


def test_a_changed_limit_is_not_served_from_a_lease_taken_under_the_old_one() -> None:
    book = leased_book()
    lower = CounterAdmission(
        T0 + 0.1, uuid.uuid4().hex, windows=(WindowCheck("w:rpm", 500, 1),), slots=(SlotCheck("slot:k", 5),)
    )
    assert book.admit(lower) is None
    assert book.windows["w:rpm"].limit == 500 and book.slots["slot:k"].limit == 5
    exchange = book.take(T0 + 0.2)
    assert all(limit == 500 for key, limit, *_ in exchange.window_asks if key == "w:rpm")


def test_leases_no_request_can_use_are_given_back_and_not_asked_for_again_for_a_while() -> None:
    # Many quiet keys under one busy team: the team's window is leased, but every request also
    # needs its own key's window, which never is, so the team's lease is never used.
    book = LeaseBook()

    def quiet_key_request(now: float) -> CounterAdmission:
        own = WindowCheck(f"w:key:{uuid.uuid4().hex}", 10**9, 1)
        return CounterAdmission(now, uuid.uuid4().hex, windows=(own, WindowCheck("w:team", 10**9, 1)))

    asked_at = []
    now = T0
    while now < T0 + 6:
        for _ in range(MIN_MISSES):
            assert book.admit(quiet_key_request(now)) is None
        exchange = book.take(now + 0.01)
        if any(key == "w:team" for key, *_ in exchange.window_asks):
            asked_at.append(now)
        book.apply(exchange, granting(exchange))
        now += 0.1
    assert asked_at and asked_at[0] < T0 + 0.2  # leased at first
    assert max(asked_at) < T0 + 2.5  # then, unused for USELESS_SECONDS, no longer asked for
    assert not book.windows["w:team"].leases  # and what it held went back


def test_a_busy_plan_keeps_its_leases() -> None:
    book = leased_book()
    now = T0 + 0.05
    while now < T0 + 6:
        for _ in range(5):
            admission = chain(now)
            result = book.admit(admission)
            if result is not None:
                book.settle(Settlement(now, admission.member))
        exchange = book.take(now + 0.01)
        book.apply(exchange, granting(exchange))
        now += 0.05
    assert book.admit(chain(now)) is not None
