"""The attack's minimal failing examples, replayed step by step (each a regression test).

Each test is a rule sequence that ``test_attack.py`` found (and that was shrunk by hand),
run on the same machine with every invariant checked after every step, as hypothesis does.
The docstring names the invariant it broke and the SPEC item behind it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.hub.trading.attack_ops import Close, Garble, Modify, Outage, Poll, Signal, Trade
from tests.hub.trading.test_attack import Attack, OneHub, TwoHubs, shared_redis


class Steps:
    """A machine whose rules are followed by the invariants' check, as in a hypothesis run."""

    def __init__(self, state: Attack) -> None:
        self.state = state

    def __getattr__(self, name: str) -> Callable[..., None]:
        rule = getattr(self.state, name)

        def step(*args: Any, **kwargs: Any) -> None:
            rule(*args, **kwargs)
            self.state.bridges_hold_every_limit()

        return step


@contextlib.contextmanager
def attack(machine: type[Attack]) -> Iterator[Steps]:
    state = machine()
    try:
        state.bridges_hold_every_limit()
        yield Steps(state)
    finally:
        state.teardown()


@pytest.fixture
def two_hubs(request: pytest.FixtureRequest) -> type[TwoHubs]:
    TwoHubs.redis_url = shared_redis(request)
    return TwoHubs


def test_a_full_close_is_not_confirmed_by_an_earlier_partial_close() -> None:
    """[4 closes] After a partial close, a full close that never reached the bridge was
    reported done: the history row of the partial close was taken for it (SPEC 7, outcomes
    are the bridge's: a history row for that ticket with those lots, closed after the
    request)."""
    with attack(OneHub) as hub:
        hub.trade(Trade("A", "agent_3", "XAUUSD", "buy", lots="two", sl="half"))
        hub.close(Close("A", pick=0, size="part"))
        hub.close(Close("A", pick=0, size="all", fault="unsent"))


def test_two_closes_of_one_ticket_are_not_announced_again_from_the_history() -> None:
    """[6 events] A partial and then a full close by the hub, read in one history poll: the
    second row was announced again as a ``bridge`` close (closed lots 0.03 of 0.02)."""
    with attack(OneHub) as hub:
        hub.trade(Trade("A", "agent_3", "XAUUSD", "buy", lots="two", sl="half"))
        hub.close(Close("A", pick=0, size="part"))
        hub.close(Close("A", pick=0, size="all"))
        hub.poll(Poll("A", "agent_3"))


def test_a_close_after_a_restart_is_not_announced_again_from_the_history() -> None:
    """[6 events] A partial close (0.01 of 0.02), a restart, the close of the rest (0.01):
    reading the history, the row of the partial close (from before the restart) took the
    mark of the new close (same ticket, same lots), and the new close was announced again
    as a ``bridge`` close."""
    with attack(OneHub) as hub:
        hub.trade(Trade("A", "agent_2", "EURUSD", "buy", lots="two", sl="half"))
        hub.close(Close("A", pick=0, size="part"))
        hub.restart(on="A")
        hub.close(Close("A", pick=0, size="all"))
        hub.poll(Poll("A", "agent_2"))


def test_a_close_by_one_instance_is_not_announced_again_by_the_other(
    two_hubs: type[TwoHubs],
) -> None:
    """[6 events] Instance A closed the ticket; A and then B read the bridge's history (two
    pollers of one agent, as around a poll-lease failover, whose new holder reads the last
    24 h): B announced the same close again, a second ``closed`` for one full close."""
    with attack(two_hubs) as hub:
        hub.trade(Trade("A", "agent_1", "XAUUSD", "buy", lots="min", sl="budget"))
        hub.close(Close("A", pick=0, size="all"))
        hub.poll(Poll("A", "agent_1"))
        hub.poll(Poll("B", "agent_1"))


def test_a_stop_hit_is_announced_once_cluster_wide(two_hubs: type[TwoHubs]) -> None:
    """[6 events] The SL filled at the bridge; each instance that read the history announced
    it (two ``closed`` with ``command: bridge`` for one close)."""
    with attack(two_hubs) as hub:
        hub.trade(Trade("A", "agent_1", "XAUUSD", "buy", lots="min", sl="budget"))
        hub.gap(pick=0, beyond=0)
        hub.poll(Poll("A", "agent_1"))
        hub.poll(Poll("B", "agent_1"))


def test_a_close_whose_answer_is_late_is_not_announced_as_a_bridge_close() -> None:
    """[6 events] The bridge closed the position but its answer never came (``hang``); the
    poller read the close in the history before the hub confirmed it, and announced it as a
    ``bridge`` close; then the hub announced its own ``close`` (two for one; a poller
    racing a command)."""
    with attack(OneHub) as hub:
        hub.trade(Trade("A", "agent_3", "XAUUSD", "buy", lots="min", sl="budget"))
        hub.concurrently([Close("A", pick=0, size="all", fault="hang"), Poll("A", "agent_3")])


def test_the_daily_headroom_counts_the_open_risk() -> None:
    """[2b daily_loss] loss_today 5.41 + open risk 29.43 > 30.00 + 10 %: each trade was
    checked as ``loss_today + its risk``, without the open positions' risk (SPEC 7,
    daily loss: loss_today + open risk + this trade's risk <= limit)."""
    with attack(OneHub) as hub:
        hub.trade(Trade("A", "agent_3", "XAUUSD", "buy", lots="min", sl="point"))
        hub.gap(pick=0, beyond=470)
        hub.poll(Poll("A", "agent_3"))
        hub.trade(Trade("A", "agent_3", "XAUUSD", "buy", lots="min", sl="budget"))
        hub.trade(Trade("A", "agent_3", "EURUSD", "buy", lots="min", sl="half"))


def test_the_daily_headroom_counts_the_spread_paid_by_the_hubs_own_last_fill() -> None:
    """[2b daily_loss] Two signals without a poll between: the second was checked on the
    equity read before the first fill (loss_today 0 instead of the 6.60 of spread it paid),
    so loss_today 7.50 + open risk 27.60 = 35.10 > 30.00 + 10 % (SPEC 7, daily loss: the
    floating P/L of a position is counted in equity, its open risk from the price now)."""
    with attack(OneHub) as hub:
        hub.signal(Signal("A", "XAUUSD", "long", sl_spreads=2))
        hub.signal(Signal("A", "XAUUSD", "long", sl_spreads=16))


def test_a_fill_away_from_the_quote_the_hub_read_is_brought_back_to_the_limit() -> None:
    """[2a max_risk_per_trade] The price moved 1.00 after the hub's last read; a buy priced
    on that quote at exactly the 2.00 budget filled 1.00 higher and kept 3.00 of risk
    (SPEC 7, after a fill: risk recomputed at the fill price, breach -> tighten)."""
    with attack(OneHub) as hub:
        hub.move(agent="agent_1", symbol="XAUUSD", points=100, skip_poll=True)
        hub.trade(Trade("A", "agent_1", "XAUUSD", "buy", lots="min", sl="budget", quote="seen"))


def test_a_signal_is_sized_on_the_balance_after_a_stop_the_hub_has_not_read() -> None:
    """[2a max_risk_per_trade] A gap through the SL lost 110.10 in all; before the next poll a
    signal was sized on the old balance (risk 20.00 where the limit is now 17.80):
    ``max_risk_per_trade x balance`` must hold against the bridge's balance (SPEC 7, exact
    semantics hold with a poller racing a command)."""
    with attack(OneHub) as hub:
        hub.trade(Trade("A", "agent_3", "XAUUSD", "buy", lots="five", sl="half"))
        hub.gap(pick=0, beyond=2000)
        hub.signal(Signal("A", "USDJPY", "long", sl_spreads=4))


def test_a_trade_after_a_loss_the_hub_has_not_read_keeps_the_daily_limit() -> None:
    """[2b daily_loss] The same gap (loss_today 110.10, past the 30.00 limit); the next
    trade was checked on the equity of the last poll and filled (SPEC 7, daily loss)."""
    with attack(OneHub) as hub:
        hub.trade(Trade("A", "agent_3", "XAUUSD", "buy", lots="five", sl="half"))
        hub.gap(pick=0, beyond=2000)
        hub.trade(Trade("A", "agent_3", "EURUSD", "buy", lots="min", sl="budget"))


def test_concurrent_trades_on_different_agents_keep_the_total_exposure() -> None:
    """[2c max_total_exposure] Three agents traded at once; each was checked against the
    open risk without the others' orders in flight: 38.70 > 2 % of 1699.20 + 10 % (SPEC 7,
    global checks count in-flight risk of every agent and are serialised across agents)."""
    with attack(OneHub) as hub:
        hub.trade(Trade("A", "agent_3", "XAUUSD", "buy", lots="min", sl="budget"))
        hub.burst(
            [
                Trade("A", "agent_3", "EURUSD", "buy", lots="min", sl="half"),
                Trade("A", "agent_2", "EURUSD", "buy", lots="min", sl="budget"),
                Trade("A", "agent_1", "XAUUSD", "buy", lots="min", sl="budget"),
            ]
        )


def test_trades_on_two_instances_keep_the_total_exposure(two_hubs: type[TwoHubs]) -> None:
    """[2c max_total_exposure] The same three orders, on two instances: each instance
    checked the total against what it knew (38.70 > 2 % of 1699.20 + 10 %; SPEC 7, global
    checks serialised across agents and instances)."""
    with attack(two_hubs) as hub:
        hub.trade(Trade("A", "agent_3", "XAUUSD", "buy", lots="min", sl="budget"))
        hub.burst(
            [
                Trade("A", "agent_3", "EURUSD", "buy", lots="min", sl="half"),
                Trade("B", "agent_2", "EURUSD", "buy", lots="min", sl="budget"),
                Trade("B", "agent_1", "XAUUSD", "buy", lots="min", sl="budget"),
            ]
        )


def test_a_wider_stop_is_refused_while_the_agent_is_halted() -> None:
    """[3 gates] agent_3 lost 30.10 (its daily limit) and was halted at the next poll; a
    modify widening the SL of its other position still reached the bridge (SPEC 7,
    widening a stop is checked like a new order: halt, daily headroom, ...)."""
    with attack(OneHub) as hub:
        hub.trade(Trade("A", "agent_3", "XAUUSD", "buy", lots="min", sl="half"))
        hub.trade(Trade("A", "agent_3", "EURUSD", "buy", lots="min", sl="half"))
        hub.gap(pick=0, beyond=2000)
        hub.poll(Poll("A", "agent_3"))
        hub.modify(Modify("A", pick=0, sl="widen_budget"))


def test_a_trade_racing_the_poll_that_reads_a_halting_loss_is_refused() -> None:
    """[3 gates] A gap cost agent_3 110.10, past its 30.00 limit. A poll read the account
    (the bridge answered: halted from then on) but waited for its slow quotes; a trade in
    that window was checked on the old equity and reached the bridge (SPEC 7, daily loss:
    halted when equity has fallen..., with a poller racing a command)."""
    with attack(OneHub) as hub:
        hub.trade(Trade("A", "agent_3", "XAUUSD", "buy", lots="five", sl="half"))
        hub.gap(pick=0, beyond=2000)
        hub.concurrently(
            [
                Poll("A", "agent_3", slow="tick"),
                Trade("A", "agent_3", "EURUSD", "buy", lots="min", sl="budget"),
            ]
        )


def test_the_start_of_day_is_the_first_equity_read_after_midnight() -> None:
    """[3 gates] The last read of the day (23:59:59.999) showed 998.40; after 00:00 a
    modify fixed the new day's start from that read, before the first read of the day
    (1048.50, a price move). The price fell back: 50.10 lost since the day's start, past
    the 31.45 limit; the hub, counting from 998.40, was not halted and the next trade
    reached the bridge (SPEC 7, start-of-day equity: the first equity read at or after
    00:00 UTC)."""
    with attack(OneHub) as hub:
        hub.trade(Trade("A", "agent_3", "XAUUSD", "buy", lots="five", sl="budget"))
        hub.rollover(read_before=True)
        hub.move(agent="agent_3", symbol="XAUUSD", points=1000, skip_poll=True)
        hub.modify(Modify("A", pick=0, sl="tighten"))
        hub.poll(Poll("A", "agent_3"))
        hub.move(agent="agent_3", symbol="XAUUSD", points=-1000, skip_poll=False)
        hub.trade(Trade("A", "agent_3", "EURUSD", "buy", lots="min", sl="half"))


def test_a_close_is_not_confirmed_by_a_row_the_hub_could_not_read() -> None:
    """[4 closes] A close never reached the bridge (``vanished``); meanwhile the bridge
    began to answer that position's ``/positions`` row unreadable. Missing from the readable
    rows, the ticket was taken for closed and reported done, though it was still open (SPEC
    7, outcomes are the bridge's; SPEC 10, a row the hub cannot read is skipped, not gone)."""
    with attack(OneHub) as hub:
        hub.trade(Trade("A", "agent_3", "XAUUSD", "buy", lots="min", sl="budget"))
        hub.concurrently([Close("A", pick=0, size="all", fault="vanished"), Garble(pick=0, pre=3)])


def test_a_held_position_still_counts_for_the_other_agents_exposure() -> None:
    """[2c exposure] open risk 37.50 USD over all bridges > 33.96 (+10 %): agent_3's bridge
    answered its two positions' rows unreadable; a trade on agent_3 (refused: its open
    risk is unknown) re-read the positions and dropped the two the hub held from its
    earlier read, so agent_2's and agent_1's trades were checked without their 28.40 USD
    (SPEC 7, global checks count the open risk of every agent)."""
    with attack(OneHub) as hub:
        hub.trade(Trade("A", "agent_3", "XAUUSD", "buy", lots="five", sl="budget"))
        hub.trade(Trade("A", "agent_3", "EURUSD", "buy", lots="min", sl="half"))
        hub.garble(Garble(pick=0, others=True))
        hub.poll(Poll("A", "agent_3"))
        hub.trade(Trade("A", "agent_3", "GBPUSD", "buy", lots="min", sl="budget"))
        hub.trade(Trade("A", "agent_2", "EURUSD", "buy", lots="min", sl="budget"))
        hub.trade(Trade("A", "agent_1", "XAUUSD", "buy", lots="min", sl="budget"))


def test_a_breach_is_closed_though_the_positions_row_is_unreadable() -> None:
    """[2a max_risk_per_trade] ticket 1001 sell 0.02 XAUUSD risks 5.90 USD, per-trade
    limit 2.00: agent_1's fill came 2.05 worse than its quote (an unpolled move); the
    breach's close was refused because the bridge answered the new position's row
    unreadable, so the position kept its risk (SPEC 7, after a fill: close when the SL
    cannot be tightened; a close is always allowed)."""
    with attack(OneHub) as hub:
        hub.garble(Garble(pick=3, new_too=True))
        hub.move(agent="agent_1", symbol="XAUUSD", points=-205, skip_poll=True)
        hub.signal(Signal("B", "XAUUSD", "short", sl_spreads=2, pre=1))


def test_a_lost_partial_close_is_not_confirmed_by_an_earlier_one_while_its_row_is_unreadable() -> (
    None
):
    """[4 closes] agent_2's position row was unreadable; a partial close of 0.01 went
    through, then a second one never reached the bridge. With the ticket missing from the
    readable rows, the first close's history row (same ticket, same lots) was taken for
    the second: reported closed, the bridge still held 0.04 (SPEC 7, a history row closed
    after the request)."""
    with attack(OneHub) as hub:
        hub.trade(Trade("A", "agent_2", "EURUSD", "buy", lots="five", sl="budget"))
        hub.garble(Garble(pick=0))
        hub.close(Close("A", pick=0, size="part"))
        hub.close(Close("A", pick=0, size="part", fault="vanished"))


def test_a_restart_does_not_forget_positions_it_cannot_read_again() -> None:
    """[2c exposure] open risk 42.30 USD over all bridges > 33.95 (+10 %): agent_2 held two
    positions the hub had read; its bridge then answered their rows unreadable, and the hub
    restarted. The restarted hub had never read them whole, so agent_3's trades were
    checked as if agent_2 were flat (SPEC 7, limits hold under restarts)."""
    with attack(OneHub) as hub:
        hub.trade(Trade("A", "agent_2", "EURUSD", "buy", lots="five", sl="budget"))
        hub.trade(Trade("A", "agent_2", "GBPUSD", "buy", lots="five", sl="budget"))
        hub.garble(Garble(pick=0, others=True))
        hub.restart("A")
        hub.trade(Trade("A", "agent_3", "XAUUSD", "buy", lots="five", sl="budget"))
        hub.trade(Trade("A", "agent_3", "EURUSD", "buy", lots="min", sl="half"))


def test_a_restart_while_a_bridge_is_down_keeps_its_positions() -> None:
    """A hub that restarts while an agent's bridge is down cannot read its positions
    again: it must not take that agent as flat (agent_3 and agent_1 would then be checked
    without agent_2's open risk, SPEC 7, limits hold under restarts). The positions last
    published are restored from the data dir; the limits hold while the bridge is down and
    once it answers again. (Not an attack finding: with this config the gap it leaves is
    within the model's 10 % tolerance, so the hub's own view is checked here too.)"""
    with attack(OneHub) as hub:
        hub.trade(Trade("A", "agent_2", "EURUSD", "buy", lots="five", sl="budget"))
        hub.trade(Trade("A", "agent_2", "GBPUSD", "buy", lots="five", sl="budget"))
        hub.outage(Outage("agent_2"))
        hub.restart("A")
        held = hub.state.kit("A").registry.agents["agent_2"].positions
        market = hub.state.markets["agent_2"]
        assert {p.ticket for p in held} == {p.ticket for p in market.positions()} != set()
        hub.trade(Trade("A", "agent_3", "XAUUSD", "buy", lots="five", sl="budget"))
        hub.trade(Trade("A", "agent_1", "XAUUSD", "buy", lots="five", sl="budget"))
        hub.trade(Trade("A", "agent_3", "EURUSD", "buy", lots="min", sl="half"))
        hub.outage(Outage("agent_2", mend=True))
        hub.poll(Poll("A", "agent_2"))


def test_a_hub_is_judged_by_its_own_reads_not_by_another_instances(
    two_hubs: type[TwoHubs],
) -> None:
    """A flaw of the model, not of the hub (found by a random two-hub run). After a gap no
    hub had read, B restarted and read it: agent_2's short was then 190 USD from its stop.
    A, which had not read it yet (a check may use a quote up to ``max_quote_age_ms`` old,
    SPEC 7), let agent_1 trade, and the model blamed A with B's quote. Each hub's checks
    are now allowed the quotes that hub read."""
    with attack(two_hubs) as hub:
        hub.signal(Signal("A", "EURUSD", "short", sl_spreads=2))
        hub.trade(Trade("A", "agent_2", "EURUSD", "buy", lots="min", sl="budget"))
        hub.gap(beyond=0, pick=1)
        hub.restart("B")
        hub.burst([Trade("A", "agent_1", "XAUUSD", "buy", lots="min", sl="budget")] * 2)
