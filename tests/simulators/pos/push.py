"""The stores' upload client: signed batches and closings POSTed to Odoo.

It speaks our upload contract (``addons/connector_pos/readme/CONTRACT.md``)
as a store's POS would: each register cuts the tickets it has not uploaded
into batches of at most ``batch_size`` tickets, signs each with the store's
key and POSTs them in order; a batch keeps its id until Odoo answers 200, so
a retry after a lost answer or a 503 is the same batch. A store set offline
keeps everything and, back online, uploads it in batches of
``bulk_batch_size``.

Push faults (:class:`PushFaults`) are the client's own misbehaviour, drawn
from the seed: an answer lost after Odoo stored the batch (the batch is sent
again, same id), a ticket held back and sent in the next push (a gap), two
batches sent in swapped order, a ticket corrupted (a line without product, a
quantity ``"abc"``), a ticket sent again in the next batch.

Only the standard library: ``http.client`` does not share ``requests``'
patched session inside Odoo tests.
"""

import copy
import http.client
import json
import urllib.parse
import uuid
from dataclasses import asdict, dataclass, fields

from ..base import hmac_sha256_base64, seeded_random

CONTRACT = 1
MAX_TICKETS = 1000  # the contract's limit per batch
API_PREFIX = "/connector/pos/v1/fleets"

# A ticket corrupted by the ``malformed`` fault: what breaks, and how.
MALFORMATIONS = ("line without product", "quantity not a number")


@dataclass
class PushFaults:
    """Shares of batches (or tickets) the client mishandles, and how.

    lost_answer   a batch is stored by Odoo but the answer never reaches the
                  POS, which sends the same batch (same ``batch_id``) again
    gap           a ticket is held back from its batch and sent in the next push
    out_of_order  a batch is sent after the one that follows it
    malformed     a ticket is corrupted: a line without ``sku`` nor ``barcode``,
                  or a quantity ``"abc"``
    duplicate     a ticket is sent again in the next batch
    """

    lost_answer: float = 0.0
    gap: float = 0.0
    out_of_order: float = 0.0
    malformed: float = 0.0
    duplicate: float = 0.0

    @classmethod
    def from_dict(cls, data):
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown push fault keys: {', '.join(sorted(unknown))}")
        return cls(**data)


def sign(key, body):
    """``X-Pos-Signature``: base64 HMAC-SHA256 of the raw body, keyed with the store's key."""
    return hmac_sha256_base64(key, body)


class PushClient:
    """Uploads a :class:`~.fleet.Fleet`'s tickets and closings to Odoo's intake."""

    def __init__(self, fleet, url=None, *, batch_size=50, bulk_batch_size=500, timeout=30.0):
        self.fleet = fleet
        self.url = url
        self.batch_size = batch_size
        self.bulk_batch_size = bulk_batch_size
        self.timeout = timeout
        self.faults = PushFaults()
        self.uploads = []  # every upload attempted, in order: what was sent and answered
        self._ids = seeded_random(fleet.seed, "pos", "batch-ids")
        self._draws = {}

    # --- configuration ---------------------------------------------------------------
    def endpoint(self, kind):
        if not self.url:
            raise RuntimeError("no Odoo URL to push to: set the simulator's push_url first")
        return f"{self.url.rstrip('/')}{API_PREFIX}/{urllib.parse.quote(self.fleet.code)}/{kind}"

    def _draw(self, kind, rate):
        """Whether the next decision of ``kind`` gets its fault (seeded, counted per kind)."""
        if not rate:
            return False
        self._draws[kind] = self._draws.get(kind, 0) + 1
        return seeded_random(self.fleet.seed, "push", kind, self._draws[kind]).random() < rate

    def new_batch_id(self):
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    # --- wire ------------------------------------------------------------------------
    def envelope(self, register, tickets, batch_id=None):
        """A batch as the contract writes it."""
        return {
            "contract": CONTRACT,
            "batch_id": batch_id or self.new_batch_id(),
            "store": register.store.code,
            "register": register.code,
            "prices_include_tax": True,
            "sent_at": register.clock.isoformat(),
            "tickets": tickets,
        }

    def post(self, kind, store_code, body, key):
        """POST ``body`` (bytes) to the ``batches`` or ``closings`` endpoint, signed with ``key``.

        Returns ``{"status", "body", "headers"}``, or ``{"status": None,
        "error"}`` when the connection failed.
        """
        headers = {"Content-Type": "application/json", "X-Pos-Store": store_code}
        if key is not None:
            headers["X-Pos-Signature"] = sign(key, body)
        parts = urllib.parse.urlsplit(self.endpoint(kind))
        connection = http.client.HTTPConnection(
            parts.hostname, parts.port or 80, timeout=self.timeout
        )
        try:
            connection.request("POST", parts.path, body=body, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            return {"status": None, "error": f"{type(exc).__name__}: {exc}"}
        finally:
            connection.close()
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = raw.decode(errors="replace")
        return {"status": response.status, "body": answer, "headers": dict(response.getheaders())}

    def send(self, kind, store, payload, *, register=None, key=None, lost=False):
        """Send one batch or closing, again if its answer is lost; record and return the upload."""
        body = json.dumps(payload).encode()
        key = store.key if key is None else key
        upload = {
            "kind": kind,
            "id": payload.get("batch_id") or payload.get("closing_id"),
            "store": store.code,
            "register": register,
            "tickets": [ticket.get("uuid") for ticket in payload.get("tickets", [])],
            "bytes": len(body),
            "attempts": [],
        }
        self.uploads.append(upload)
        attempt = self.post(kind, store.code, body, key)
        if lost and attempt["status"] is not None:
            # Odoo stored it and answered; the POS never saw the answer.
            upload["attempts"].append({**attempt, "lost": True})
            attempt = self.post(kind, store.code, body, key)
        upload["attempts"].append(attempt)
        upload["status"] = attempt["status"]
        upload["answer"] = attempt.get("body")
        return upload

    # --- the register's queue ----------------------------------------------------------
    def cut(self, register, size):
        """Cut the register's outbox into pending batches of at most ``size`` tickets."""
        queue = sorted(register.held + register.outbox, key=lambda t: t["sequence"])
        register.held = []
        register.outbox = []
        echoes = []  # tickets sent again: they ride in the next batch
        while queue or echoes:
            tickets, echoes = echoes, []
            room = size - len(tickets)
            chunk, queue = queue[:room], queue[room:]
            for ticket in chunk:
                meta = self.fleet.meta[ticket["uuid"]]
                if not meta.get("held") and self._draw("gap", self.faults.gap):
                    meta["held"] = True
                    register.held.append(ticket)
                    continue
                sent = self._maybe_malformed(ticket)
                tickets.append(sent)
                if self._draw("duplicate", self.faults.duplicate):
                    meta["duplicated"] = True
                    echoes.append(sent)
            if tickets:
                # The envelope is fixed once cut: a retry sends the very same body.
                batch_id = self.new_batch_id()
                register.pending.append(
                    {
                        "batch_id": batch_id,
                        "tickets": tickets,
                        "payload": self.envelope(register, tickets, batch_id),
                    }
                )

    def _maybe_malformed(self, ticket):
        if ticket["type"] not in ("sale", "return") or not self._draw(
            "malformed", self.faults.malformed
        ):
            return ticket
        broken = copy.deepcopy(ticket)
        how = MALFORMATIONS[self._draws["malformed"] % len(MALFORMATIONS)]
        if how == "line without product":
            broken["lines"][0].pop("sku", None)
            broken["lines"][0].pop("barcode", None)
        else:
            broken["lines"][0]["quantity"] = "abc"
        self.fleet.meta[ticket["uuid"]]["malformed"] = how
        return broken

    def flush(self, register):
        """Send the register's pending batches in order, then its closings.

        Stops at the first batch not answered 200 (kept, same id, for the
        next push), except 400 and 413, which no retry can fix: those are
        set aside in ``register.rejected``.
        """
        store = register.store
        results = []
        order = list(range(len(register.pending)))
        for index in range(len(order) - 1):
            if order[index] == index and self._draw("out_of_order", self.faults.out_of_order):
                order[index], order[index + 1] = order[index + 1], order[index]
        batches = [register.pending[i] for i in order]
        for batch in batches:
            upload = self.send(
                "batches",
                store,
                batch["payload"],
                register=register.code,
                lost=self._draw("lost_answer", self.faults.lost_answer),
            )
            results.append(upload)
            if upload["status"] == 200:
                register.pending.remove(batch)
                for ticket in batch["tickets"]:
                    self.fleet.meta[ticket["uuid"]].setdefault("batches", []).append(
                        batch["batch_id"]
                    )
            elif upload["status"] in (400, 413):
                register.pending.remove(batch)
                register.rejected.append(batch)
            else:
                return results
        while register.closings and not register.pending:
            closing = register.closings[0]
            upload = self.send("closings", store, closing, register=register.code)
            results.append(upload)
            if upload["status"] != 200:
                break
            register.closings.pop(0)
        return results

    def push(self, registers, bulk=False):
        """Cut and send what ``registers`` (online stores only) have not uploaded yet."""
        results = []
        for register in registers:
            if not register.store.online:
                continue
            self.cut(register, self.bulk_batch_size if bulk else self.batch_size)
            results.extend(self.flush(register))
        return results

    def snapshot(self):
        return {"faults": asdict(self.faults), "uploads": self.uploads}
