"""A world's buffers turned into the five input tables and the truth frame.

The tables follow the input data contract (docs/data-contract.md): accounts, orders,
interactions, links and churn, with string ids, category labels and datetimes; events on or
after an account's churn day (or the end of the world) lose their later date (a delivery, a
resolution), as a real export would show them. `iter_frames` yields large tables in chunks of
rows so a writer can append and drop each one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.simulator.buffers import CHURN, INTERACTIONS, LINKS, ORDERS, compact, concat
from pipeline.simulator.columns import id_chars, ids, labels, strings
from pipeline.simulator.constants import (
    CHANNELS,
    DEPARTMENTS,
    INTERACTION_TYPES,
    LINK_TYPES,
    NAME_ADJECTIVES,
    NAME_NOUNS,
    NEVER,
    PRODUCT_LINES,
    REASONS,
    REGIONS,
    SEGMENTS,
    SIZE_BANDS,
)

if TYPE_CHECKING:
    from pipeline.simulator.world import World


def frames(world: World) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Assemble the tables and the truth frame of a world that has run."""
    tables = dict(iter_frames(world))  # one frame per table without chunk_rows
    return tables, tables.pop("truth")


def iter_frames(world: World, chunk_rows: int | None = None) -> Iterator[tuple[str, pd.DataFrame]]:
    """Yield (name, frame) for the five tables, then the truth, consuming the event buffers.

    With chunk_rows, orders and interactions come as consecutive frames of at most that
    many rows (ids continue across chunks), so a writer can append and drop each one.
    """
    cfg = world.cfg
    base = np.datetime64(pd.Timestamp(cfg.start).date(), "s")
    n = cfg.n_accounts
    acc_chars = id_chars("A", np.arange(1, n + 1), max(6, len(str(n))))
    acc_ids = strings(acc_chars)

    def dates(days: np.ndarray, unit: int = 86400) -> pd.Series:
        """Datetimes from day (or second) offsets; NEVER becomes NaT."""
        days = np.asarray(days, np.int64)
        out = base + (np.where(days == NEVER, 0, days) * unit).astype("timedelta64[s]")
        out[days == NEVER] = np.datetime64("NaT")
        return pd.Series(out)

    def account_col(acc: np.ndarray) -> pd.Series:
        """account_id strings for account indices."""
        return strings(acc_chars[acc])

    churn_day = np.full(n, NEVER, np.int64)
    ch = concat(world.churn, CHURN)
    churn_day[ch["acc"]] = ch["day"]
    limit = np.minimum(churn_day, world.end_day)

    names = pd.Series(
        pc.binary_join_element_wise(
            pa.array(np.array(NAME_ADJECTIVES)[world.rng.integers(0, len(NAME_ADJECTIVES), n)]),
            pa.array(np.array(NAME_NOUNS)[world.rng.integers(0, len(NAME_NOUNS), n)]),
            pa.array(world.rng.integers(1, 100, n)).cast(pa.string()),
            " ",
        ),
        dtype="str",
    )
    yield (
        "accounts",
        pd.DataFrame(
            {
                "account_id": acc_ids,
                "name": names,
                "segment": labels(world.segment, SEGMENTS),
                "region": labels(world.region, REGIONS),
                "size_band": labels(world.size, SIZE_BANDS),
                "customer_since": dates(world.since),
                "annual_wallet": world.wallet.astype(float),
            }
        ),
    )

    o, world.orders = concat(world.orders, ORDERS), []
    m = o["day"].size
    for a, b in _chunks(m, chunk_rows):
        yield (
            "orders",
            pd.DataFrame(
                {
                    "order_id": ids("O", a + 1, b + 1, max(7, len(str(m)))),
                    "account_id": account_col(o["acc"][a:b]),
                    "order_date": dates(o["day"][a:b]),
                    "amount": o["amount"][a:b],
                    "product_line": labels(o["line"][a:b], PRODUCT_LINES),
                    "channel": labels(o["channel"][a:b], CHANNELS),
                    "quantity": o["qty"][a:b].astype(np.int64),
                    "promised_date": dates(o["promised"][a:b]),
                    "delivered_date": dates(_until(o["delivered"][a:b], limit[o["acc"][a:b]])),
                }
            ),
        )
    del o

    i, world.inter = concat(world.inter, INTERACTIONS), []
    m = i["sec"].size
    for a, b in _chunks(m, chunk_rows):
        account = account_col(i["acc"][a:b])
        contact = pc.binary_join_element_wise(
            pa.array(account),
            pa.array(i["contact"][a:b]).cast(pa.large_string()),
            pa.scalar("-C", pa.large_string()),
        )
        yield (
            "interactions",
            pd.DataFrame(
                {
                    "interaction_id": ids("I", a + 1, b + 1, max(7, len(str(m)))),
                    "account_id": account,
                    "occurred_at": dates(i["sec"][a:b], unit=1),
                    "type": labels(i["type"][a:b], INTERACTION_TYPES),
                    "initiated_by": labels(
                        1 - i["customer"][a:b].astype(np.int64), ("customer", "supplier")
                    ),
                    "department": labels(i["dept"][a:b], DEPARTMENTS),
                    "minutes": i["minutes"][a:b].astype(np.float64),
                    "contact_id": pd.Series(contact, dtype="str"),
                    "resolved_at": dates(
                        _until(i["resolved"][a:b], limit[i["acc"][a:b]] * 86400), unit=1
                    ),
                }
            ),
        )
    del i

    # links still active at the end have no end date
    a, typ = np.nonzero(world.active & world.alive_end[:, None])
    last = {
        "acc": a,
        "type": typ,
        "start": world.link_start[a, typ],
        "end": np.full(a.size, NEVER),
    }
    lk = concat([*world.links, compact(last, LINKS)], LINKS)
    alpha = np.argsort(np.argsort(LINK_TYPES))  # tie-break by the link_type string
    sl = np.lexsort((alpha[lk["type"]], lk["acc"], lk["start"]))
    lk = {k: v[sl] for k, v in lk.items()}
    yield (
        "links",
        pd.DataFrame(
            {
                "account_id": account_col(lk["acc"]),
                "link_type": labels(lk["type"], LINK_TYPES),
                "start_date": dates(lk["start"]),
                "end_date": dates(lk["end"]),
            }
        ),
    )

    sc = np.lexsort((ch["acc"], ch["day"]))
    yield (
        "churn",
        pd.DataFrame(
            {
                "account_id": account_col(ch["acc"][sc]),
                "churned_at": dates(ch["day"][sc]),
                "reason": labels(ch["reason"][sc], REASONS),
            }
        ),
    )

    t_acc = np.concatenate([e for e, _, _ in world.truth] or [np.zeros(0, np.int64)])
    t_day = np.concatenate(
        [np.full(e.size, c, np.int64) for e, c, _ in world.truth] or [np.zeros(0, np.int64)]
    )
    t_p = np.concatenate([p for _, _, p in world.truth] or [np.zeros(0)])
    st = np.lexsort((t_acc, t_day))
    yield (
        "truth",
        pd.DataFrame(
            {
                "account_id": account_col(t_acc[st]),
                "cutoff": dates(t_day[st]),
                "p_churn": t_p[st].astype(float),
            }
        ),
    )


def latent_frame(world: World) -> pd.DataFrame:
    """Per-account latent parameters and final state (for tests and diagnostics)."""
    n = world.cfg.n_accounts
    acc_ids = ids("A", 1, n + 1, max(6, len(str(n))))
    return pd.DataFrame(
        {
            "account_id": acc_ids,
            "trust": world.p["tau"],
            "voice": world.p["voice"],
            "eng_share": world.p["eng"],
            "p_late": world.p["p_late"],
            "attention": world.lat.att.astype(float),
            "health": world.lat.h.astype(float),
            "n_links": world.lat.nl.astype(np.int64),
        }
    )


def _until(when: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """NEVER where an event falls on or after the limit (the churn day or the end), else when.

    Applied chunk by chunk, so no temporary as long as a whole event table is alive.
    """
    return np.where(when >= limit, NEVER, when)


def _chunks(n: int, size: int | None) -> Iterator[tuple[int, int]]:
    """Row ranges [a, b) of at most size rows covering n rows (one range if size is None)."""
    if size is None or n <= size:
        yield 0, n
        return
    for a in range(0, n, size):
        yield a, min(n, a + size)
