"""Prometheus metrics of the router: what operators and municipalities watch.

Labels stay bounded: area codes (141), municipalities (342), modes, stages, outcomes, dial statuses —
never callers, call ids or transcripts. Each :class:`Metrics` has its own registry, so several routers
(tests, one process per instance in production) never collide.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

SECONDS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 20, 30, 60)
FAST = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1, 1.5, 2, 3)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.calls = Counter(
            "fourteen_calls",
            "Calls handled, by area code, mode and outcome",
            ["area_code", "mode", "outcome"],
            registry=r,
        )
        self.active = Gauge("fourteen_active_calls", "Calls in the router now", registry=r)
        self.first_utterance = Counter(
            "fourteen_speech_first_utterance",
            "First utterance of a speech call: recognised (decision without asking again) or not",
            ["area_code", "result"],
            registry=r,
        )
        self.attempts = Histogram(
            "fourteen_call_attempts",
            "Attempts (utterances or menu rounds) per call",
            ["mode"],
            buckets=(1, 2, 3, 4, 6),
            registry=r,
        )
        self.hangups = Counter(
            "fourteen_ivr_hangups",
            "Callers who hung up before reaching a KCC, by stage",
            ["area_code", "stage"],
            registry=r,
        )
        self.confirmations = Counter(
            "fourteen_confirmations",
            "Confirmation questions and their answers",
            ["area_code", "answer"],
            registry=r,
        )
        self.no_input = Counter(
            "fourteen_no_input",
            "Listening steps in which the caller said and pressed nothing",
            ["area_code", "step"],
            registry=r,
        )
        self.no_match = Counter(
            "fourteen_no_match", "Utterances that matched no municipality", ["area_code"], registry=r
        )
        self.dtmf_fallbacks = Counter(
            "fourteen_dtmf_fallbacks",
            "Speech calls that went on with the menu, by reason",
            ["area_code", "reason"],
            registry=r,
        )
        self.operator = Counter(
            "fourteen_operator_requests", "Callers asking for a person", ["area_code", "via"], registry=r
        )
        self.decisions = Counter(
            "fourteen_decisions",
            "Resolver decisions on what callers said",
            ["area_code", "decision"],
            registry=r,
        )
        self.time_to_route = Histogram(
            "fourteen_time_to_route_seconds", "Answer → KCC dialled", ["mode"], buckets=SECONDS, registry=r
        )
        self.speech_decision = Histogram(
            "fourteen_speech_decision_seconds", "End of speech → decision", buckets=FAST, registry=r
        )
        self.decode = Histogram(
            "fourteen_recognition_decode_seconds", "Recogniser time per utterance", buckets=FAST, registry=r
        )
        self.transfers = Counter(
            "fourteen_transfers",
            "Diverts to a KCC, by municipality and dial status",
            ["municipality", "dial_status"],
            registry=r,
        )
        self.transfer_failures = Counter(
            "fourteen_transfer_failures",
            "Diverts that did not connect, per KCC",
            ["municipality", "dial_status"],
            registry=r,
        )
        self.prompt_failures = Counter(
            "fourteen_prompt_failures",
            "Prompts that could not be synthesised (a stock sound played)",
            registry=r,
        )
        self.agi_protocol_errors = Counter(
            "fourteen_agi_protocol_errors", "Malformed FastAGI sessions closed", registry=r
        )
        self.database_up = Gauge(
            "fourteen_database_up", "1 when the configuration database answers", registry=r
        )
        self.plan_revision = Gauge(
            "fourteen_plan_revision", "Revision of the routing plan in use", registry=r
        )
        self.record_backlog = Gauge(
            "fourteen_call_record_backlog", "Call records waiting to be written to the database", registry=r
        )
        self.recogniser_streams = Gauge(
            "fourteen_recogniser_streams", "Speech recognisers in use", registry=r
        )
        self.recogniser_rejected = Counter(
            "fourteen_recogniser_rejected", "Listening steps refused a recogniser (pool full)", registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
