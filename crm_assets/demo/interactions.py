"""Campaign messages to persons with consent, and their opens, clicks and unsubscribes.

Every channel of ``CAMPAIGN_CHANNELS`` sends campaigns on fixed days of every month. A person with
the channel's consent gets every (5 + stride)-th campaign from its registration on, until the end
or, for 8%, until it unsubscribes. The ``interactions`` table is filled by one pipeline from the
person-ordered ``activity`` table, so its rows are stored in (person, channel, message, event)
order and numbered by ``rowid``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from crm_assets.demo.activity import field, record_of
from crm_assets.demo.keyed_random import KeyedRandom
from crm_assets.demo.records import customer_id
from crm_assets.demo.reference import CAMPAIGN_CHANNELS, CITIES
from crm_assets.demo.run import Run
from crm_assets.demo.sql_literals import lst, nested_lst

_OPTS = ("email_opt", "sms_opt", "push_opt")  # the consent of each channel


@dataclass(frozen=True)
class _ChannelCampaigns:
    """One channel's campaigns for every month of the period, in sending order.

    ``offs`` are the campaigns' days from ``start`` (the first and last month's may fall outside
    the period); ``lo`` and ``hi`` are the first and last index inside it (0 and -1 if none).
    """

    ids: list[str]
    offs: list[int]
    lo: int
    hi: int
    days: tuple[int, ...]
    hour: int


def _campaigns(run: Run) -> list[_ChannelCampaigns]:
    """Per channel: campaign ids and day offsets (from start) for every month of the period."""
    out = []
    base_y, base_m = run.start.year, run.start.month
    months = (run.end.year - base_y) * 12 + run.end.month - base_m + 1
    for name, days, hour, _, _ in CAMPAIGN_CHANNELS:
        ids, offs = [], []
        for mi in range(months):
            y, m = base_y + (base_m - 1 + mi) // 12, (base_m - 1 + mi) % 12 + 1
            for j, d in enumerate(days):
                ids.append(f"CMP-{y:04d}-{m:02d}-{name}-{j + 1:02d}")
                offs.append((date(y, m, d) - run.start).days)
        valid = [i for i, o in enumerate(offs) if 0 <= o < run.span]
        lo, hi = (valid[0], valid[-1]) if valid else (0, -1)
        out.append(_ChannelCampaigns(ids, offs, lo, hi, days, hour))
    return out


def build_interactions(run: Run) -> None:
    """Campaign messages to persons with consent, and their opens, clicks, unsubscribes."""
    camps = _campaigns(run)
    run.con.execute(f"""
        CREATE TABLE interactions AS
        WITH {_schedule_ctes(run.r, camps)},
            {_message_ctes(run, camps)},
            {_event_ctes()}
        -- one pipeline from the person-ordered activity table: the rows are stored in
        -- (person, channel, message, event) order and numbered by rowid
        SELECT * FROM ev2 WHERE ts <= {run.t_end}
        """)


def _schedule_ctes(r: KeyedRandom, camps: list[_ChannelCampaigns]) -> str:
    """``pc``..``pc3``: per person and channel, which campaigns it gets (``cp``) and how many
    (``n0``, ``n1``, ``n2``).

    The first campaign a person can get is the first after its registration day (``first``), the
    last one the channel's last in the period, or none without consent (``hi``). It gets every
    (5 + stride)-th from ``first + phase``; an unsubscriber stops at a random one of them.
    ``cp`` packs per channel (14 bits each) the index of its first campaign in the flat list of
    all channels' campaigns (10 bits), stride (3 bits) and whether it unsubscribes (1 bit).
    """
    per_channel = []
    for ch, c in enumerate(camps):
        first = (
            f"greatest({c.lo}, reg_month * {len(c.days)}"
            + "".join(f" + (reg_dom >= {d})::INT" for d in c.days)
            + ")"
        )
        per_channel.append(f"""
                {r.stream(f"pid * 4 + {ch}", "c1")} AS hc{ch},
                {first} AS first{ch},
                CASE WHEN {_OPTS[ch]} THEN {c.hi} ELSE -1 END AS hi{ch}""")
    derived, counts = [], []
    for ch in range(3):
        derived.append(f"""
                {r.pick(f"hc{ch}", 0, 7)} AS stride{ch},  -- every (5 + stride)-th campaign
                {r.u(f"hc{ch}", 1)} < 0.08 AS unsub{ch},
                {r.pick(f"hc{ch}", 2, f"5 + {r.pick(f'hc{ch}', 0, 7)}")} AS phase{ch}""")
        avail = (
            f"CASE WHEN hi{ch} - first{ch} > phase{ch} "
            f"THEN (hi{ch} - first{ch} - phase{ch}) // (5 + stride{ch}) + 1 ELSE 0 END"
        )
        counts.append(f"""
                CASE WHEN unsub{ch} AND {avail} > 0
                     THEN 1 + {r.pick(f"hc{ch}", 3, avail)} ELSE {avail} END AS n{ch}""")
    bases = [sum(len(c.ids) for c in camps[:ch]) for ch in range(len(camps))]
    # per channel: first campaign (10 bits), stride - 5 (3 bits), unsubscribes (1 bit)
    chan_pack = " | ".join(
        f"((({bases[ch]} + first{ch} + phase{ch}) | (stride{ch} << 10)"
        f" | (unsub{ch}::BIGINT << 13)) << {14 * ch})"
        for ch in range(3)
    )
    return f"""pc AS (
            SELECT pid, pk, r01, r23, regm, {", ".join(per_channel)}
            FROM activity WHERE email_opt OR sms_opt OR push_opt
        ), pc2 AS (
            SELECT *, {", ".join(derived)} FROM pc
        ), pc3 AS (
            SELECT pid, pk, r01, r23, regm, {chan_pack} AS cp, {", ".join(counts)} FROM pc2
        )"""


def _message_ctes(run: Run, camps: list[_ChannelCampaigns]) -> str:
    """``s``..``s5``: one row per message: its channel, campaign, sending instant (the campaign's
    local hour + up to 20 minutes), record, and a bitmask of what followed: opened (1; never for
    SMS, always before an unsubscribe), clicked (2; an e-mail or push only once opened),
    unsubscribed (4; the last message of an unsubscriber). Delays are packed in ``delays``:
    opening 20 bits, clicking above them."""
    u, pick = run.r.u, run.r.pick
    flat_offs = [o for c in camps for o in c.offs]
    open_rate = lst([x[3] for x in CAMPAIGN_CHANNELS])
    click_rate = lst([x[4] for x in CAMPAIGN_CHANNELS])
    hours = lst([c.hour for c in camps])
    chan = "CASE WHEN jj < n0 THEN 0 WHEN jj < n0 + n1 THEN 1 ELSE 2 END"
    return f"""s AS (
            -- one row per message, the person's channels one after another
            SELECT pid, pk, r01, r23, regm, cp, n0, n1, n0 + n1 + n2 AS n_all,
                unnest(range(n0 + n1 + n2)) AS jj
            FROM pc3 WHERE n0 + n1 + n2 > 0
        ), s1 AS (
            SELECT *, {chan} AS ch FROM s
        ), s2 AS (
            SELECT *,
                jj - CASE ch WHEN 0 THEN 0 WHEN 1 THEN n0 ELSE n0 + n1 END AS j,
                CASE ch WHEN 0 THEN n0 WHEN 1 THEN n1 ELSE n_all - n0 - n1 END AS n_sends,
                (cp >> (14 * ch)::INTEGER) & 16383 AS c
            FROM s1
        ), s3 AS (
            SELECT *,
                (c & 1023) + j * (5 + ((c >> 10) & 7)) AS camp,
                (c >> 13) = 1 AND j = n_sends - 1 AS unsub,
                {run.r.stream("(pid * 4 + ch) * 256 + j", "m1")} AS hm,
                {run.r.stream("(pid * 4 + ch) * 256 + j", "m2")} AS hm2
            FROM s2
        ), s4 AS (
            SELECT *,
                {run.t0} + {lst(flat_offs)}[camp + 1] * 86400 + {hours}[ch + 1] * 3600
                    + {pick("hm", 0, 1200)} AS sent_ts,
                ({u("hm", 1)} < {open_rate}[ch + 1] OR unsub) AND ch <> 1 AS opened,
                30 + floor(-ln(1 - {u("hm", 2)}) * 10800)::BIGINT % 259200 AS open_delay,
                30 + {pick("hm", 3, 900)} AS click_delay,
                {pick("hm2", 1, f"{field('pk', 'n_rec1')} + 1")} AS rec
            FROM s3
        ), s5 AS (
            SELECT sent_ts, open_delay | (click_delay << 20) AS delays,
                ch | (camp << 2) | ({field("pk", "city")} << 16) AS info,
                {record_of(run, "rec", "sent_ts")} AS rec_no,
                opened::INT + 2 * ((ch = 1 OR opened) AND {u("hm2", 0)} < {click_rate}[ch + 1])::INT
                    + 4 * unsub::INT AS mask
            FROM s4
        )"""


def _event_ctes() -> str:
    """``ev``, ``ev2``: one row per event of a message (0 sent, 1 opened, 2 clicked,
    3 unsubscribed) at its instant: opened the open delay after sending, clicked the click delay
    after the opening (after sending for SMS), unsubscribed the open delay plus two click delays
    after sending."""
    # the events of one message by bitmask opened(1) | clicked(2) | unsubscribed(4)
    event_lists = nested_lst(
        [[0] + [t for bit, t in ((1, 1), (2, 2), (4, 3)) if mask & bit] for mask in range(8)]
    )
    return f"""ev AS (
            SELECT sent_ts, delays, info, rec_no, unnest({event_lists}[mask + 1]) AS itype FROM s5
        ), ev2 AS (
            SELECT rec_no, info, itype,
                sent_ts + CASE itype
                    WHEN 0 THEN 0
                    WHEN 1 THEN delays & 1048575
                    WHEN 2 THEN (delays & 1048575) * (info & 3 <> 1)::INT + (delays >> 20)
                    ELSE (delays & 1048575) + 2 * (delays >> 20) END AS ts
            FROM ev
        )"""


def write_interactions(run: Run, path: Path) -> int:
    """The interactions file: ids by ``rowid`` (the stored order), instants with the city's UTC
    offset."""
    offsets = lst([c[2] for c in CITIES])
    campaign_ids = lst([i for c in _campaigns(run) for i in c.ids])
    exprs = {
        "interaction_id": "'I' || (10000001 + rowid)::VARCHAR",
        "customer_id": customer_id("rec_no"),
        "channel": f"{lst([c[0] for c in CAMPAIGN_CHANNELS])}[(info & 3) + 1]",
        "interaction_type": "['sent', 'opened', 'clicked', 'unsubscribed'][itype + 1]",
        "campaign_id": f"{campaign_ids}[((info >> 2) & 16383) + 1]",
        "occurred_at": "strftime(make_timestamp(ts * 1000000), '%Y-%m-%dT%H:%M:%S') || "
        f"{offsets}[(info >> 16) + 1]",
    }
    return run.copy_to_csv(
        "interactions", exprs, "interactions", run.key("rowid"), path, prerender=True
    )
