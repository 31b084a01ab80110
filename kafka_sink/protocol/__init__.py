"""Sans-I/O Kafka wire protocol: typed requests and responses to and from bytes.

Nothing in this package touches sockets, threads, clocks or logging; it turns
typed values into bytes and bytes into typed values, and raises
:class:`~kafka_sink.errors.ProtocolError` for anything malformed.
"""
