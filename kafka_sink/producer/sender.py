"""The sender: one thread that moves batches from the accumulator to the brokers.

Theory of operation. Each turn of the loop (:meth:`Sender.run_once`):

1. resolves futures failed on callers' threads (buffer full, too large), so
   delivery callbacks always run here;
2. keeps cluster metadata fresh: at start, every ``metadata_max_age_ms``, and
   soon after an error that says it is stale or when a topic's leaders are
   unknown; records waiting for a topic's partition count get one;
3. with idempotence, obtains a producer id and epoch (InitProducerId) before
   anything is sent; a broker that cannot do idempotence makes the sink fall
   back to plain produce, which the metrics show;
4. drains ready batches, one ProduceRequest per leader, at most one batch per
   partition in flight (order is kept across retries), up to
   ``max_in_flight`` requests per connection;
5. fails batches older than ``delivery_timeout_ms``;
6. waits in :meth:`Network.poll` until a response, new data (a wakeup), a
   linger or retry deadline, or a metadata deadline: it never spins.

Idempotence (KIP-98): each partition's batches carry consecutive sequence
numbers, assigned when a batch is first sent and kept across its retries, so
a broker that already appended a batch (its answer was lost) recognises the
retry as a duplicate instead of writing it twice. A batch the broker rejected
gives its sequence back; a broker that lost the producer's state
(UNKNOWN_PRODUCER_ID, OUT_OF_ORDER_SEQUENCE_NUMBER, a fenced epoch) makes the
sender take a new producer id and number every partition from zero again.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from kafka_sink.config import BrokerAddress, SinkConfig
from kafka_sink.error_codes import KafkaErrorCode
from kafka_sink.errors import (
    BrokerResponseError,
    DeliveryError,
    DeliveryTimeoutError,
    KafkaSinkError,
    RecordTooLargeError,
    UnsupportedVersionError,
)
from kafka_sink.net.metadata import ClusterMetadata, TopicPartition
from kafka_sink.net.response import ClientResponse
from kafka_sink.net.transport import Clock
from kafka_sink.producer.accumulator import ProducerBatch, RecordAccumulator
from kafka_sink.producer.futures import BatchOutcome, DeliveryFuture, DeliveryReport
from kafka_sink.producer.metrics import SinkMetrics
from kafka_sink.producer.partitioner import PartitionFunction
from kafka_sink.protocol.apis import ApiKey
from kafka_sink.protocol.codecs import Compression
from kafka_sink.protocol.init_producer_id import InitProducerIdRequest, InitProducerIdResponse
from kafka_sink.protocol.metadata import MetadataRequest, MetadataResponse
from kafka_sink.protocol.produce import (
    ZSTD_MIN_VERSION,
    PartitionProduceData,
    PartitionProduceResponse,
    ProduceRequest,
    ProduceResponse,
    TopicProduceData,
)
from kafka_sink.protocol.records import Header, decode_batches
from kafka_sink.protocol.schema import AnswerT, Request

if TYPE_CHECKING:
    from kafka_sink.producer.accumulator import PendingRecord
    from kafka_sink.producer.spool import Spool

__all__ = ["Network", "Sender"]


_SEQUENCE_MODULUS = 2**31
_UNREACHABLE = ("disconnected", "backoff")
_RESET_PRODUCER = {
    KafkaErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
    KafkaErrorCode.INVALID_PRODUCER_EPOCH,
    KafkaErrorCode.UNKNOWN_PRODUCER_ID,
    KafkaErrorCode.PRODUCER_FENCED,
}
# InitProducerId answers that mean "this cluster will not do idempotence for us".
_IDEMPOTENCE_REFUSED = {
    KafkaErrorCode.CLUSTER_AUTHORIZATION_FAILED,
    KafkaErrorCode.UNSUPPORTED_VERSION,
    KafkaErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
}


class Network(Protocol):
    """What the sender needs of the I/O layer (``kafka_sink.net.client.NetworkClient``)."""

    def set_nodes(self, nodes: Mapping[int, BrokerAddress]) -> None: ...
    def ready(self, node_id: int) -> bool: ...
    def version_for(self, node_id: int, api_key: int) -> int: ...
    def send(
        self,
        node_id: int,
        request: Request[AnswerT],
        callback: Callable[[ClientResponse[AnswerT]], None],
        *,
        version: int | None = None,
    ) -> None: ...
    def poll(self, timeout: float) -> None: ...
    def wakeup(self) -> None: ...
    def least_loaded_node(self) -> int | None: ...
    def in_flight(self, node_id: int | None = None) -> int: ...
    def connection_states(self) -> dict[int, str]: ...
    def authentication_error(self) -> KafkaSinkError | None: ...
    def silence(self) -> None: ...
    def close(self) -> None: ...


class Sender:
    """Drives the accumulator and the network; see the module docstring."""

    def __init__(
        self,
        config: SinkConfig,
        accumulator: RecordAccumulator,
        network: Network,
        partitioner: PartitionFunction,
        metrics: SinkMetrics,
        clock: Clock,
        spool: Spool | None = None,
    ) -> None:
        self._config = config
        self._acc = accumulator
        # With a spool, records are never given up on for time (they wait on
        # disk for as long as it takes), and every batch is journaled.
        self._spool = spool
        self._net = network
        self._partitioner = partitioner
        self._metrics = metrics
        self._clock = clock
        self._random = random.Random()
        self._compression = Compression.from_name(config.compression_type)
        self._request_timeout_ms = int(min(config.request_timeout_ms, 2**31 - 1))
        self._idempotent = config.enable_idempotence
        metrics.idempotence = "pending" if self._idempotent else "disabled by configuration"
        # The cluster (net/metadata), replaced as a whole so other threads can
        # read it; partition_counts is its view that produce() reads per record.
        self._metadata = ClusterMetadata()
        self.partition_counts: dict[str, int] = self._metadata.partition_counts
        self._topics: set[str] = set()
        self._have_metadata = False
        self._metadata_in_flight = False
        self._metadata_due = 0.0
        self._metadata_backoff = 0
        # Idempotence state.
        self._producer_id = -1
        self._producer_epoch = -1
        self._pid_in_flight = False
        self._pid_due = 0.0
        self._next_sequence: dict[TopicPartition, int] = {}
        self.loop_errors = 0
        network.set_nodes({-(i + 1): a for i, a in enumerate(config.bootstrap_servers)})

    # -- the loop -------------------------------------------------------------------

    def run_once(self) -> None:
        """One turn of the loop: see the module docstring."""
        now = self._clock()
        self._acc.resolve_doomed()
        refused = self._net.authentication_error()
        if refused is not None:
            self._fail_unauthenticated(refused)
        self._maybe_request_metadata(now)
        self._assign_pending()
        wait = 3600.0
        spool = self._spool
        if (
            spool is not None
            and self._acc.load_spooled(self.partition_counts, self._partitioner)
            and not spool.direct
        ):
            wait = 0.0  # more to read back while the buffer has room
        if self._idempotent and self._producer_id < 0:
            self._maybe_init_producer_id(now)
            wait = min(wait, self._retry_backoff(1))
        else:
            ready, next_check, unknown = self._acc.ready(self._leader_of, now)
            wait = min(wait, next_check)
            if unknown:
                self._topics.update(unknown)
                self._metadata_soon(now)
            sendable = {node for node in ready if self._net.ready(node)}
            if len(sendable) < len(ready):
                wait = min(wait, self._retry_backoff(1))
                states = self._net.connection_states()
                if any(
                    states.get(node, "disconnected") in _UNREACHABLE for node in ready - sendable
                ):
                    # A leader we cannot reach may have been replaced: ask, since
                    # no request to it will ever fail and say so.
                    self._metadata_soon(now)
            if sendable:
                drained = self._acc.drain(
                    self._leader_of, sendable, self._config.max_request_size, now
                )
                for node, batches in drained.items():
                    self._send_produce(node, batches, now)
        self._expire(now)
        if self._metadata_due > now and not self._metadata_in_flight:
            wait = min(wait, self._metadata_due - now)
        elif not self._metadata_in_flight:
            wait = min(wait, self._retry_backoff(1))
        self._net.poll(max(0.0, wait))

    def has_pending_work(self) -> bool:
        return self._acc.has_work() or self._net.in_flight() > 0

    # -- futures failed elsewhere -----------------------------------------------------

    # -- metadata ---------------------------------------------------------------------

    def _leader_of(self, topic: str, partition: int) -> int | None:
        return self._metadata.leaders.get((topic, partition))

    def _metadata_soon(self, now: float) -> None:
        if self._metadata_due > now + self._retry_backoff(self._metadata_backoff + 1):
            self._metadata_due = now

    def _maybe_request_metadata(self, now: float) -> None:
        if self._metadata_in_flight or self._metadata_due > now:
            return
        node = self._net.least_loaded_node()
        if node is None or not self._net.ready(node):
            return
        topics = sorted(self._topics | set(self._acc.pending_topics()))
        request = MetadataRequest.for_topics(topics, allow_auto_topic_creation=True)
        self._metadata_in_flight = True
        self._metrics.metadata_refreshes += 1
        self._net.send(node, request, self._on_metadata)

    def _on_metadata(self, response: ClientResponse[MetadataResponse]) -> None:
        self._metadata_in_flight = False
        now = self._clock()
        body: MetadataResponse | None = response.body
        if response.error is not None or body is None or not body.brokers:
            self._metadata_backoff += 1
            self._metadata_due = now + self._retry_backoff(self._metadata_backoff)
            return
        self._metadata_backoff = 0
        self._metadata_due = now + self._config.metadata_max_age_ms / 1000.0
        self._have_metadata = True
        newer = ClusterMetadata.from_response(body)
        self._net.set_nodes(newer.brokers)
        described = [topic.name for topic in body.topics if topic.name is not None]
        metadata = self._metadata.updated(newer, described)
        # Every topic produced to stays in later refreshes: a leader that
        # moves must be relearned, not only the leaders of unknown topics.
        self._topics.update(name for name in described if name not in newer.topic_errors)
        self._metadata = metadata
        self.partition_counts = metadata.partition_counts
        errors = metadata.topic_errors
        if metadata.missing_leaders():
            # A leader missing from the broker list (a broker that is down) is
            # no leader: ask again soon rather than wait on it.
            self._metadata_due = now + self._retry_backoff(1)
        for name, code in errors.items():
            info = BrokerResponseError(code, topic=name)
            if not info.retriable and code != KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
                error = DeliveryError(
                    f"cannot produce to topic {name!r}: {info.message}", topic=name, cause=info
                )
                if self._spool is not None:
                    records = self._acc.take_pending(name)
                    self._dead_letter_pending(name, records, error)
                    self._fail_futures([r.future for r in records], name, error, "topic")
                    continue
                self._fail_futures(self._acc.fail_pending(name, error), name, error, "topic")

    def _assign_pending(self) -> None:
        for topic in self._acc.pending_topics():
            count = self.partition_counts.get(topic)
            if count:
                self._acc.assign_pending(topic, self._partitioner, count)

    # -- idempotence --------------------------------------------------------------------

    def _maybe_init_producer_id(self, now: float) -> None:
        if self._pid_in_flight or self._pid_due > now:
            return
        node = self._net.least_loaded_node()
        if node is None or not self._net.ready(node):
            return
        try:
            self._net.version_for(node, ApiKey.INIT_PRODUCER_ID)
        except UnsupportedVersionError:
            self._disable_idempotence("the broker has no InitProducerId API")
            return
        self._pid_in_flight = True
        self._net.send(node, InitProducerIdRequest(None, -1), self._on_producer_id)

    def _on_producer_id(self, response: ClientResponse[InitProducerIdResponse]) -> None:
        self._pid_in_flight = False
        body: InitProducerIdResponse | None = response.body
        if response.error is not None or body is None:
            self._pid_due = self._clock() + self._retry_backoff(1)
            return
        if body.error_code in _IDEMPOTENCE_REFUSED:
            self._disable_idempotence(BrokerResponseError(body.error_code).name)
            return
        if body.error_code:
            self._pid_due = self._clock() + self._retry_backoff(1)
            return
        self._producer_id = body.producer_id
        self._producer_epoch = body.producer_epoch
        self._next_sequence.clear()
        self._metrics.idempotence = "enabled"

    def _disable_idempotence(self, reason: str) -> None:
        self._idempotent = False
        self._producer_id = -1
        self._metrics.idempotence = f"disabled: {reason}"

    def _reset_producer_id(self) -> None:
        # Every partition starts again from sequence 0 under the new id.
        self._producer_id = -1
        self._producer_epoch = -1
        self._next_sequence.clear()
        self._pid_due = 0.0

    # -- produce ------------------------------------------------------------------------

    def _send_produce(self, node: int, batches: list[ProducerBatch], now: float) -> None:
        version = self._net.version_for(node, ApiKey.PRODUCE)
        if self._compression == Compression.ZSTD and version < ZSTD_MIN_VERSION:
            error = DeliveryError(
                f"the broker speaks Produce v{version}; zstd needs v{ZSTD_MIN_VERSION}+"
            )
            for batch in batches:
                self._fail_batch(batch, error, "unsupported")
            return
        topics: dict[str, list[PartitionProduceData]] = {}
        sent: dict[TopicPartition, ProducerBatch] = {}
        for batch in batches:
            try:
                wire = self._encode(batch)
            except OSError:
                # The spool could not journal the batch (a full disk): nothing
                # of this request is sent; it is tried again after a back-off.
                self._metrics.broker_errors["spool_journal_error"] += 1
                for unsent in batches:
                    self._acc.requeue(unsent, now + self._retry_backoff(unsent.attempts + 1))
                self._net.wakeup()  # this turn's wait was computed before the requeue
                return
            topics.setdefault(batch.topic, []).append(PartitionProduceData(batch.partition, wire))
            sent[(batch.topic, batch.partition)] = batch
            batch.attempts += 1
        request = ProduceRequest(
            None,
            self._config.acks,
            self._request_timeout_ms,
            [TopicProduceData(topic, parts) for topic, parts in topics.items()],
        )
        self._metrics.requests += 1
        self._net.send(
            node, request, lambda response: self._on_produce(response, sent), version=version
        )

    def _encode(self, batch: ProducerBatch) -> bytes:
        spool = self._spool if batch.spool_log is not None else None
        if batch.pinned:
            # Replayed from a spool's journal: sent again exactly as it may
            # have been sent before, so that the broker can tell a duplicate.
            assert batch.sequence is not None
            return batch.encoded(batch.producer_id, batch.producer_epoch, batch.sequence)
        if not self._idempotent or self._producer_id < 0:
            if spool is not None and batch.spool_serial < 0:
                spool.sealed(batch, -1, -1, -1)
            return batch.encoded(-1, -1, -1)
        tp = (batch.topic, batch.partition)
        if batch.producer_id != self._producer_id or batch.sequence is None or batch.sequence < 0:
            sequence = self._next_sequence.get(tp, 0)
            if spool is not None:
                # Journaled before the request exists: a batch that may reach
                # the broker is always one the spool can send again as it was.
                spool.sealed(batch, self._producer_id, self._producer_epoch, sequence)
            self._next_sequence[tp] = (sequence + batch.record_count) % _SEQUENCE_MODULUS
        else:
            sequence = batch.sequence
        return batch.encoded(self._producer_id, self._producer_epoch, sequence)

    def _on_produce(
        self,
        response: ClientResponse[ProduceResponse | None],
        sent: dict[TopicPartition, ProducerBatch],
    ) -> None:
        self._metrics.latencies.append(response.latency)
        if response.error is not None:
            self._metrics.broker_errors[type(response.error).__name__] += 1
            for batch in sent.values():
                self._retry_or_fail(batch, response.error, stale_metadata=True)
            return
        body = response.body
        if body is None:  # acks=0: written, never answered
            for batch in sent.values():
                self._complete(batch, -1, -1)
            return
        for topic in body.responses:
            for part in topic.partition_responses:
                key = (topic.name, part.index)
                if key in sent:
                    self._on_partition(sent.pop(key), part)
        for batch in sent.values():  # the broker said nothing of these
            self._retry_or_fail(batch, DeliveryError("the produce response omitted the partition"))

    def _on_partition(self, batch: ProducerBatch, part: PartitionProduceResponse) -> None:
        code = part.error_code
        if code == KafkaErrorCode.NONE:
            self._complete(batch, part.base_offset, part.log_append_time_ms)
            return
        if code == KafkaErrorCode.DUPLICATE_SEQUENCE_NUMBER:
            self._metrics.broker_errors["DUPLICATE_SEQUENCE_NUMBER"] += 1
            # The broker has this batch already: a retry of a write that succeeded.
            self._complete(batch, -1, -1)
            return
        self._metrics.broker_errors[BrokerResponseError(code).name] += 1
        error = BrokerResponseError(
            code,
            f"{BrokerResponseError(code).message}"
            + (f" ({part.error_message})" if part.error_message else ""),
            topic=batch.topic,
            partition=batch.partition,
        )
        if batch.pinned and (code in _RESET_PRODUCER or code == KafkaErrorCode.MESSAGE_TOO_LARGE):
            # The broker no longer knows the producer that sealed this batch
            # before a restart (expired, fenced): it can no longer tell whether
            # it has the batch. Sent again under the current producer id, it
            # may be written twice: counted.
            self._unpin(batch)
            if code in _RESET_PRODUCER:
                self._retry_or_fail(batch, error)
                return
        if code in _RESET_PRODUCER and self._idempotent:
            self._reset_producer_id()
            self._retry_or_fail(batch, error)
            return
        if code == KafkaErrorCode.MESSAGE_TOO_LARGE:
            self._give_back_sequence(batch)
            if batch.record_count > 1:
                self._split(batch)
                return
            self._fail_batch(
                batch,
                RecordTooLargeError(
                    f"the broker refused the record as too large: {error.message}",
                    topic=batch.topic,
                    partition=batch.partition,
                    cause=error,
                ),
                "too_large",
            )
            return
        if error.retriable:
            self._retry_or_fail(batch, error, stale_metadata=error.invalid_metadata)
            return
        self._give_back_sequence(batch)
        self._fail_batch(
            batch,
            DeliveryError(
                f"the broker refused the batch: {error.message}",
                topic=batch.topic,
                partition=batch.partition,
                cause=error,
            ),
            error.name.lower(),
        )

    def _unpin(self, batch: ProducerBatch) -> None:
        batch.pinned = False
        batch.sequence = None
        batch.producer_id = -1
        batch.producer_epoch = -1
        if self._spool is not None:
            self._spool.add_duplicate_risk(batch.record_count)

    def _give_back_sequence(self, batch: ProducerBatch) -> None:
        """A refused batch was not appended: the partition's next sequence is its own."""
        if (
            self._idempotent
            and batch.sequence is not None
            and batch.producer_id == self._producer_id
        ):
            self._next_sequence[(batch.topic, batch.partition)] = batch.sequence
            batch.sequence = None

    def _split(self, batch: ProducerBatch) -> None:
        """Re-queue each record of a batch the broker found too large as its own batch."""
        records = [
            r for decoded in decode_batches(batch.encoded(-1, -1, -1)) for r in decoded.records
        ]
        # Each record's future, or its report (from the batch's runs), by index.
        futures: dict[int, DeliveryFuture] = {future._index: future for future in batch.futures}
        reports: dict[int, DeliveryReport] = {
            index: report
            for report, first, count in batch.reports
            for index in range(first, first + count)
        }
        pieces: list[ProducerBatch] = []
        for index, record in enumerate(records):
            piece = ProducerBatch(
                batch.topic,
                batch.partition,
                self._compression,
                1,
                batch.created,
                self._config.compression_level,
            )
            piece.builder.append(record.timestamp, record.key, record.value, record.headers)
            piece.add(futures.get(index), reports.get(index))
            if batch.spool_ids is not None:
                piece.spool_log = batch.spool_log
                piece.spool_ids = array("q", [batch.spool_ids[index]])
            pieces.append(piece)
        if self._spool is not None:
            # Refused unwritten: its journal entry gives way to the pieces'.
            self._spool.cancelled(batch)
        # The pieces take over the batch's memory (released with the first piece)
        # and its records; the original batch is dropped without being finished.
        pieces[0].reserved = batch.reserved
        for piece in reversed(pieces):
            piece.attempts = 1
            piece.sealed = True
            self._acc.requeue(piece, 0.0)

    def _retry_or_fail(
        self, batch: ProducerBatch, error: KafkaSinkError, *, stale_metadata: bool = False
    ) -> None:
        now = self._clock()
        if stale_metadata:
            self._metadata_soon(now)
        deadline = batch.created + self._config.delivery_timeout_ms / 1000.0
        if self._spool is not None:
            deadline = now + 3600.0
        elif now >= deadline:
            self._fail_batch(
                batch,
                DeliveryTimeoutError(
                    f"not delivered within delivery_timeout_ms after {batch.attempts} "
                    f"attempts; last error: {error.message}",
                    topic=batch.topic,
                    partition=batch.partition,
                    cause=error,
                ),
                "timeout",
            )
            return
        self._metrics.retries += 1
        self._acc.requeue(batch, min(deadline, now + self._retry_backoff(batch.attempts)))

    def _complete(self, batch: ProducerBatch, base_offset: int, log_append_time: int) -> None:
        outcome = BatchOutcome(batch.topic, batch.partition, base_offset, log_append_time)
        self._metrics.records_sent += batch.record_count
        self._metrics.batches_sent += 1
        self._metrics.bytes_uncompressed += batch.builder.size_in_bytes
        self._metrics.bytes_compressed += len(batch.wire or b"")
        if self._spool is not None:
            self._spool.acked(batch)
        self._metrics.callback_errors += batch.resolve(outcome)
        self._acc.finish(batch)

    def _fail_batch(self, batch: ProducerBatch, error: DeliveryError, reason: str) -> None:
        outcome = BatchOutcome(batch.topic, batch.partition, -1, error=error)
        self._metrics.failed[reason] += batch.record_count
        if self._spool is not None and batch.spool_log is not None:
            # Never deliverable as it is: kept in the spool's dead-letter file.
            records = [
                (batch.topic, batch.partition, r.timestamp, r.key, r.value, r.headers)
                for decoded in decode_batches(batch.builder.build(), verify_crc=False)
                for r in decoded.records
            ]
            self._spool.dead_letter(
                batch.spool_log,
                batch.spool_ids,
                records,
                f"{reason}: {error.message}",
                batch.spool_serial,
            )
        self._metrics.callback_errors += batch.resolve(outcome)
        self._acc.finish(batch)

    def _dead_letter_pending(
        self, topic: str, records: Sequence[PendingRecord], error: DeliveryError
    ) -> None:
        spool = self._spool
        assert spool is not None
        by_log: dict[int, tuple[Any, list[int], list[Any]]] = {}
        for record in records:
            if record.spool_log is None:
                continue
            entry = by_log.setdefault(id(record.spool_log), (record.spool_log, [], []))
            entry[1].append(record.spool_id)
            headers: Sequence[Header] = record.headers
            entry[2].append(
                (
                    topic,
                    -1 if record.partition is None else record.partition,
                    record.timestamp,
                    record.key,
                    record.value,
                    headers,
                )
            )
        for log, ids, rows in by_log.values():
            spool.dead_letter(log, array("q", ids), rows, f"topic: {error.message}")

    def _fail_futures(
        self, futures: list[DeliveryFuture], topic: str, error: DeliveryError, reason: str
    ) -> None:
        outcome = BatchOutcome(topic, -1, -1, error=error)
        self._metrics.failed[reason] += len(futures)
        for future in futures:
            if not future.resolve(outcome):
                self._metrics.callback_errors += 1

    def _expire(self, now: float) -> None:
        if self._spool is not None:
            # Records wait as long as it takes, but for a topic the cluster says
            # does not exist: after delivery_timeout_ms, to the dead-letter file.
            for topic, records in self._acc.take_expired_pending(
                now, list(self._metadata.topic_errors)
            ):
                code = self._metadata.topic_errors.get(topic)
                why = BrokerResponseError(code).name if code else "no metadata for the topic"
                error = DeliveryTimeoutError(
                    f"topic {topic!r} had no partition available within delivery_timeout_ms "
                    f"({why}); the records are in the spool's dead-letter file",
                    topic=topic,
                )
                self._dead_letter_pending(topic, records, error)
                self._fail_futures([r.future for r in records], topic, error, "timeout")
            return
        for batch in self._acc.expire(now):
            self._fail_batch(
                batch,
                DeliveryTimeoutError(
                    "not delivered within delivery_timeout_ms "
                    f"({self._config.delivery_timeout_ms:g} ms)",
                    topic=batch.topic,
                    partition=batch.partition,
                ),
                "timeout",
            )
        for topic, futures in self._acc.expire_pending(now):
            code = self._metadata.topic_errors.get(topic)
            why = BrokerResponseError(code).name if code else "no metadata for the topic"
            error = DeliveryTimeoutError(
                f"topic {topic!r} had no partition available within delivery_timeout_ms ({why})",
                topic=topic,
            )
            self._fail_futures(futures, topic, error, "timeout")

    def abort(self, error: DeliveryError, reason: str = "closed") -> None:
        """Fail everything still buffered (close ran out of time, or authentication failed)."""
        for item in self._acc.abort_all():
            if isinstance(item, ProducerBatch):
                outcome = BatchOutcome(item.topic, item.partition, -1, error=error)
                self._metrics.failed[reason] += item.record_count
                self._metrics.callback_errors += item.resolve(outcome)
            else:
                self._fail_futures([item.future], "", error, reason)
        if self._spool is not None:
            self._fail_futures(self._acc.take_backlog_futures(), "", error, reason)
        self._acc.resolve_doomed()

    def _fail_unauthenticated(self, refused: KafkaSinkError) -> None:
        """A broker refused the credentials or the TLS handshake: the same settings
        cannot deliver what is buffered, so it fails now, with that error as its
        cause, instead of at the delivery timeout (the network keeps backing off).
        With a spool, records wait in it instead, for settings that work."""
        if self._spool is None and self._acc.has_work():
            error = DeliveryError(
                f"not delivered: {refused.message}", cause=refused, reason="authentication"
            )
            self.abort(error, "authentication")

    def _retry_backoff(self, attempt: int) -> float:
        base = self._config.retry_backoff_ms / 1000.0 * 2.0 ** max(0, attempt - 1)
        cap = self._config.retry_backoff_max_ms / 1000.0
        return min(base, cap) * self._random.uniform(0.8, 1.2)
