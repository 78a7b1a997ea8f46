"""Photos and documents a buyer sends (payment screenshots): kept with the conversation."""

from __future__ import annotations

from integrations.storage.repositories import ConversationLog, LoggedMessage


class AttachmentService:
    def __init__(self, conversation_log: ConversationLog) -> None:
        self._log = conversation_log

    async def keep(self, chat_id: int, user_id: int, message_id: int, file: tuple[str, str, str]) -> None:
        kind, file_id, name = file
        await self._log.append(
            LoggedMessage(
                chat_id=chat_id,
                telegram_user_id=user_id,
                direction="in",
                kind=kind,
                text=f"[{kind}] {name} file_id={file_id}",
                telegram_message_id=message_id,
            )
        )
