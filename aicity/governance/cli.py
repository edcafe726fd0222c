"""``aicity audit|register|approvals|oversight``: the lead wires :func:`add_parsers` into aicity/cli.py.

Databases are opened through the state store (read-only unless the command records something); a missing,
corrupt or truncated database is one line. ``audit verify`` checks the ledger against its published signed tree
head (``ledger-head.json`` next to the database or export, the run's report, ``--head``, ``--witness`` or
``--expect-size/--expect-root``), so deleting the newest records fails it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aicity.core.errors import UserError, unreadable

if TYPE_CHECKING:
    from aicity.core.store import SqliteStore
    from aicity.governance.ledger import Expectation, Ledger


def add_parsers(subparsers: Any) -> None:
    """Add the governance commands to an argparse subparsers object (each sets ``func=run``)."""
    audit = subparsers.add_parser("audit", help="verify, export and show the tamper-evident decision ledger")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    p = asub.add_parser("verify", help="recompute every hash and signature; exit 1 naming the first bad record")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--db", help="a run's city.db")
    src.add_argument("--jsonl", help="an exported ledger (aicity audit export)")
    p.add_argument("--key", help="the deployment's ledger key file, to check the ledger was signed with it")
    p.add_argument("--head", action="append", default=[],
                   help="a published signed tree head (default: ledger-head.json next to the ledger, and the "
                        "run's report.json); the ledger must hold it")
    p.add_argument("--witness", action="append", default=[],
                   help="a witness copy: an earlier ledger-head.json or audit.jsonl export the ledger must extend")
    p.add_argument("--expect-size", type=_size, help="the ledger must hold at least this many records")
    p.add_argument("--expect-root", help="the tree root (hex) at --expect-size records")
    p.set_defaults(func=run, gov_command="audit verify")
    p = asub.add_parser("export", help="write the ledger as canonical JSON lines")
    p.add_argument("--db", required=True)
    p.add_argument("--jsonl", required=True, help="output file")
    p.set_defaults(func=run, gov_command="audit export")
    p = asub.add_parser("show", help="a record with its explanation, inclusion proof and causal chain")
    p.add_argument("id", help="record id, e.g. dec-0000042")
    p.add_argument("--db", required=True)
    p.set_defaults(func=run, gov_command="audit show")

    reg = subparsers.add_parser("register", help="algorithm register entries (Eurocities / NL ATS, UK ATRS)")
    rsub = reg.add_subparsers(dest="register_command", required=True)
    p = rsub.add_parser("export", help="write a validated algorithm register entry")
    p.add_argument("--format", required=True, choices=("eurocities", "atrs"))
    p.add_argument("--out", required=True, help="output JSON file")
    p.add_argument("--config", help="human-written register config (TOML/JSON; default: the shipped example)")
    p.add_argument("--policy", help="oversight policy file (default: the shipped policy)")
    p.add_argument("--model-card", action="append", default=[], help="model card JSON (repeatable)")
    p.set_defaults(func=run, gov_command="register export")

    card = subparsers.add_parser("modelcard", help="model cards (Mitchell et al.) from benchmark/backtest results")
    csub = card.add_subparsers(dest="modelcard_command", required=True)
    p = csub.add_parser("build", help="write <name>.model-card.json and .md")
    p.add_argument("--results", action="append", required=True, help="results JSON (repeatable)")
    p.add_argument("--meta", required=True, help="human-written card metadata (TOML/JSON): intended use, limits...")
    p.add_argument("--select", action="append", default=[], help="FIELD=VALUE picking the model's records")
    p.add_argument("--baseline", action="append", default=[], help="FIELD=VALUE picking the baseline's records")
    p.add_argument("--metrics", required=True, help="comma list of metric fields")
    p.add_argument("--factors", default="", help="comma list of fields or nested groups to disaggregate by "
                   "(district, time_of_day; scenario/district: districts per map)")
    p.add_argument("--worst", default="", help="comma list of METRIC[:min] whose worst-off group per nested factor "
                   "the caveats name (default: the first metric, highest is worst)")
    p.add_argument("--equity-threshold", type=float, default=None,
                   help="state each worst-off group's best/worst ratio and flag it below this value (e.g. 0.8)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run, gov_command="modelcard build")

    appr = subparsers.add_parser("approvals", help="the queue of proposals awaiting human approval")
    psub = appr.add_subparsers(dest="approvals_command", required=True)
    p = psub.add_parser("list", help="pending approvals (--all: every entry)")
    p.add_argument("--db", required=True)
    p.add_argument("--all", action="store_true")
    p.set_defaults(func=run, gov_command="approvals list")
    for verb in ("approve", "reject"):
        p = psub.add_parser(verb, help=f"{verb} a queued proposal (a reason is required)")
        p.add_argument("id", type=int)
        p.add_argument("--reason", required=True)
        p.add_argument("--by", default="operator", help="who decides (role or name)")
        p.add_argument("--db", required=True)
        p.add_argument("--key", help="ledger key file (default $AICITY_LEDGER_KEY or ~/.aicity/ledger-ed25519.pem)")
        p.set_defaults(func=run, gov_command=f"approvals {verb}")

    over = subparsers.add_parser("oversight", help="the stop button: stop or resume AI control")
    osub = over.add_subparsers(dest="oversight_command", required=True)
    for verb in ("stop", "resume"):
        p = osub.add_parser(verb, help=f"{verb} AI control globally or for one domain (recorded)")
        p.add_argument("--domain", help="one domain (default: every domain)")
        p.add_argument("--reason", required=True)
        p.add_argument("--by", default="operator")
        p.add_argument("--db", required=True)
        p.add_argument("--key", help="ledger key file")
        p.set_defaults(func=run, gov_command=f"oversight {verb}")
    p = osub.add_parser("status", help="active stops")
    p.add_argument("--db", required=True)
    p.set_defaults(func=run, gov_command="oversight status")


def _size(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return n


@contextmanager
def _store(path: str, *, write: bool = False) -> Iterator[SqliteStore]:
    """An existing database as a state store; every database failure is one :class:`UserError`."""
    from aicity.core.store import SqliteStore, database_errors

    with database_errors(path):
        store = SqliteStore.open(path, readonly=not write)
        try:
            yield store
        finally:
            store.close()


def _public_key(path: str | None) -> str | None:
    from cryptography.hazmat.primitives import serialization

    from aicity.governance.ledger import public_hex

    if path is None:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read key {path}: {exc.strerror or exc}") from exc
    try:
        key: Any = serialization.load_pem_private_key(data, password=None)
        return public_hex(key.public_key())
    except (ValueError, TypeError):
        try:
            return public_hex(serialization.load_pem_public_key(data))  # type: ignore[arg-type]
        except ValueError as exc:
            raise UserError(f"{path} is not a PEM Ed25519 key") from exc


def _signing_ledger(store: SqliteStore, key: str | None) -> Ledger:
    from aicity.governance.ledger import Ledger

    return Ledger.open(store, key)


def _publish(ledger: Ledger, db: str) -> None:
    """Keep the head file next to the database current after a command appended to the ledger."""
    from aicity.governance.ledger import HEAD_FILE

    ledger.publish_head(Path(db).parent / HEAD_FILE, now=datetime.now(UTC), by="aicity cli")


def _report_heads(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    """Signed tree heads of this folder's mode in the run's ``report.json`` (one level up), if any."""
    report = folder.parent / "report.json"
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        return []
    found: list[tuple[str, dict[str, Any]]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if {"size", "root", "signature", "public_key"} <= set(node) and node.get("mode") == folder.name:
                found.append((f"the signed tree head in {report}", node))
                return
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(data)
    return found


def _expectations(args: argparse.Namespace, ledger_path: str) -> tuple[list[Expectation], list[str]]:
    """What the ledger must hold, and where we looked when nothing was published."""
    from aicity.governance.ledger import HEAD_FILE, Expectation, SignedTreeHead, read_head, witness_expectation

    out: list[Expectation] = []
    folder = Path(ledger_path).resolve().parent
    auto = folder / HEAD_FILE
    heads = [Path(h) for h in args.head]
    if auto.is_file() and auto.resolve() not in {h.resolve() for h in heads}:
        heads.insert(0, auto)
    for h in heads:
        head = read_head(h)
        out.append(Expectation(head.size, head.root, f"the signed tree head in {h}", head))
    for source, node in _report_heads(folder):
        head = SignedTreeHead.from_dict(node, source)
        out.append(Expectation(head.size, head.root, source, head))
    out += [witness_expectation(w) for w in args.witness]
    if args.expect_root is not None and args.expect_size is None:
        raise UserError("--expect-root needs --expect-size (the root is the tree's at that size)")
    if args.expect_size is not None:
        root = None
        if args.expect_root is not None:
            try:
                root = bytes.fromhex(args.expect_root)
            except ValueError:
                raise UserError(f"--expect-root {args.expect_root!r} is not hex") from None
        out.append(Expectation(args.expect_size, root, "--expect-size/--expect-root"))
    return out, [str(auto), str(folder.parent / "report.json")]


def _verify(args: argparse.Namespace) -> int:
    from aicity.governance.ledger import verify_jsonl, verify_store

    pk = _public_key(args.key)
    if args.db:
        expect, looked = _expectations(args, args.db)
        with _store(args.db) as store:
            result = verify_store(store, pk, expect=expect)
    else:
        if not Path(args.jsonl).is_file():
            raise UserError(f"no export at {args.jsonl}")
        expect, looked = _expectations(args, args.jsonl)
        result = verify_jsonl(args.jsonl, pk, expect=expect)
    print(result.message())
    if result.ok and pk is None:
        print("note: checked against the key the ledger declares; pass --key to check the deployment key")
    if result.ok and not expect:
        print(f"warning: no published tree head found (looked for {' and '.join(looked)}): deleting the newest "
              "records cannot be detected; pass --head, --witness or --expect-size/--expect-root")
    return 0 if result.ok else 1


def _show(args: argparse.Namespace) -> int:
    from aicity.governance.explain import explain
    from aicity.governance.ledger import Ledger
    from aicity.governance.merkle import verify_inclusion

    with _store(args.db) as store:
        ledger = Ledger(store)
        rec = ledger.get(args.id)
        if rec is None:
            raise UserError(f"no record {args.id!r} in {args.db} (or it was pruned)")
        print(json.dumps(rec, indent=2, sort_keys=True, ensure_ascii=False))
        if rec.get("kind") == "decision":
            print("\nExplanation\n" + explain(rec).text)
        index, leaf, proof = ledger.inclusion_proof(args.id)
        head = ledger.tree_head()
        ok = verify_inclusion(leaf, index, head.size, proof, head.root) and head.verify()
        print(f"\nLedger: leaf {index} of {head.size}; inclusion proof ({len(proof)} hashes) against the signed "
              f"tree head {head.root.hex()[:16]}… {'verifies' if ok else 'DOES NOT VERIFY'}")
        ctx = rec.get("context") or {}
        start = next((ctx[k] for k in ("ack", "command", "decision", "observation") if ctx.get(k)), None)
        chain = store.trace(start) if start else []
        if chain:
            print("\nCausal chain (newest first)")
        for ev in chain:
            data = json.dumps(ev.data, sort_keys=True, default=str)
            print(f"  {ev.time.isoformat()}  {ev.type:<12} {ev.actor:<28} {ev.id}  {data[:100]}")
        return 0 if ok else 1


def _register(args: argparse.Namespace) -> int:
    from aicity.governance.register import export_register, load_config

    cards = []
    for path in args.model_card:
        try:
            cards.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read model card {path}: {exc}") from exc
    entry = export_register(args.format, config=load_config(args.config), policy=_city_policy(args.policy),
                            model_cards=cards)
    try:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(entry, indent=2, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise UserError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
    print(f"{args.format} register entry validated against the shipped schema: {args.out}")
    return 0


def _pairs(items: list[str], flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"{flag} {item!r}: use FIELD=VALUE")
        try:
            out[key] = json.loads(value)
        except RecursionError:
            raise UserError(f"{flag} {key}: its value is nested too deeply to read") from None
        except ValueError:
            out[key] = value
    return out


def _modelcard(args: argparse.Namespace) -> int:
    import tomllib

    from aicity.governance.modelcard import build_model_card, load_results

    results = [r for path in args.results for r in load_results(path)]
    try:
        text = Path(args.meta).read_text()
        meta = json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
    except (OSError, ValueError, RecursionError) as exc:
        raise UserError(f"cannot read model card metadata {args.meta}: {unreadable(exc)}") from exc
    card = build_model_card(meta, results, select=_pairs(args.select, "--select"),
                            metrics=[m for m in args.metrics.split(",") if m],
                            factors=[f for f in args.factors.split(",") if f],
                            baseline=_pairs(args.baseline, "--baseline") if args.baseline else None,
                            worst=[w for w in args.worst.split(",") if w], equity_threshold=args.equity_threshold)
    j, m = card.write(args.out)
    print(f"model card: {j} and {m}")
    return 0


def _approvals(args: argparse.Namespace, verb: str) -> int:
    from aicity.governance.oversight import ApprovalQueue

    if verb == "list":
        with _store(args.db) as store:
            items = ApprovalQueue(store).entries(None if args.all else "pending")
        if not items:
            print("no pending approvals" if not args.all else "the approvals queue is empty")
        for a in items:
            p = a.proposal
            print(f"{a.id:>5}  {a.status:<9} {a.created}  {a.domain}: {p.action} {dict(p.params)} on "
                  f"{p.target}  (record {a.record_id}){f'  by {a.by}: {a.reason}' if a.by else ''}")
        return 0
    with _store(args.db, write=True) as store:
        ledger = _signing_ledger(store, args.key)
        item = ApprovalQueue(store, ledger).decide(args.id, verb == "approve", reason=args.reason, by=args.by,
                                                   now=datetime.now(UTC))
        _publish(ledger, args.db)
    print(f"approval {item.id} {item.status} by {item.by}: {item.reason}")
    return 0


def _city_policy(path: str | None) -> Any:
    """The site policy (``path``, else ``$AICITY_POLICY``, else the shipped one) over every installed domain's
    shipped defaults: what a run of all of them would be governed by."""
    import os

    from aicity.core.domain import discover
    from aicity.governance.oversight import DomainPolicy, Policy

    site = Policy.load(path or os.environ.get("AICITY_POLICY") or None)
    shipped = [DomainPolicy.load(name, d.meta.policy) for name, d in sorted(discover().items())
               if d.meta.policy is not None]
    return site.with_domains(shipped)


def _installed_domains() -> list[str]:
    """Names of the installed domain plug-ins (none when discovery itself fails: the database's then count)."""
    from aicity.core.domain import discover

    try:
        return sorted(discover())
    except Exception:  # a broken plug-in must not block the stop button; recorded domains still count
        return []


def _oversight(args: argparse.Namespace, verb: str) -> int:
    from aicity.governance.ledger import Ledger
    from aicity.governance.oversight import Governor

    if verb == "status":
        with _store(args.db) as store:
            stops = Governor(Ledger(store)).stops()
        print("\n".join(f"stopped: {d['scope']} since {d['time']} by {d['by']}: {d['reason']}"
                        + ("" if d.get("safe_state_done") else " (safe state not yet confirmed)") for d in stops)
              or "no active stop")
        return 0
    with _store(args.db, write=True) as store:
        ledger = _signing_ledger(store, args.key)
        gov = Governor(ledger)
        now = datetime.now(UTC)
        if verb == "stop":
            gov.stop(args.domain, reason=args.reason, by=args.by, now=now, known=_installed_domains())
        else:
            gov.resume(args.domain, reason=args.reason, by=args.by, now=now)
        _publish(ledger, args.db)
    print(f"{verb} recorded for {args.domain or 'every domain'}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the governance command in ``args``; returns the exit code."""
    cmd = getattr(args, "gov_command", "")
    group, _, verb = cmd.partition(" ")
    if cmd == "audit verify":
        return _verify(args)
    if cmd == "audit export":
        from aicity.governance.ledger import Ledger

        with _store(args.db) as store:
            try:
                n = Ledger(store).export_jsonl(args.jsonl)
            except OSError as exc:
                raise UserError(f"cannot write {args.jsonl}: {exc.strerror or exc}") from exc
        print(f"exported {n} records to {args.jsonl}")
        return 0
    if cmd == "audit show":
        return _show(args)
    if cmd == "register export":
        return _register(args)
    if cmd == "modelcard build":
        return _modelcard(args)
    if group == "approvals":
        return _approvals(args, verb)
    if group == "oversight":
        return _oversight(args, verb)
    raise UserError(f"unknown governance command {cmd!r}")
