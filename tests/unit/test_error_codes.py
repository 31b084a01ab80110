"""KafkaErrorCode is the error-code table, member for member."""

from __future__ import annotations

from kafka_sink.error_codes import _TABLE, KafkaErrorCode, describe_error, error_code_for_name


def test_every_code_of_the_table_is_a_member_with_its_name() -> None:
    assert {member.value: member.name for member in KafkaErrorCode} == {
        code: entry[0] for code, entry in _TABLE.items()
    }


def test_members_compare_as_the_codes_on_the_wire() -> None:
    assert KafkaErrorCode.NONE == 0  # type: ignore[comparison-overlap]  # an IntEnum equals its int
    assert KafkaErrorCode(6) is KafkaErrorCode.NOT_LEADER_OR_FOLLOWER
    assert describe_error(KafkaErrorCode.MESSAGE_TOO_LARGE).name == "MESSAGE_TOO_LARGE"
    assert (
        error_code_for_name("DUPLICATE_SEQUENCE_NUMBER") == KafkaErrorCode.DUPLICATE_SEQUENCE_NUMBER
    )
