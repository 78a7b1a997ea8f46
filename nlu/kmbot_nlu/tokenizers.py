"""Jieba tokens whose long numbers are featurised by their shape, not their digits.

Order ids (KM + 12 digits), phone numbers, QQ numbers and game UIDs are different in every message. Featurised
character by character, their digits outweigh the few words around them: "where is KM20261127102" was read
as a bare order id (``inform``) or as a status question depending on which digits the id happened to contain.
The token's *lemma*, which the CountVectorsFeaturizer reads, replaces every run of five or more digits with one
shape symbol, so every order id looks alike and the words decide the intent. Token text and offsets are kept:
entities are still extracted from the real characters (and the RegexFeaturizer still sees them). Short numbers
stay as they are: "88" (bye), "10 分钟", "2 小时" carry meaning.
"""

from __future__ import annotations

import re

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.training_data.message import Message

LONG_NUMBER = re.compile(r"\d{5,}")
NUMBER_SHAPE = "#"


def number_shape(text: str) -> str:
    """The token with its long digit runs collapsed: 'KM20261127102' -> 'KM#', '13812345678' -> '#'."""
    return LONG_NUMBER.sub(NUMBER_SHAPE, text)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=True)
class NumberShapeJiebaTokenizer(JiebaTokenizer):
    """Rasa's JiebaTokenizer, with long numbers reduced to their shape in each token's lemma."""

    def tokenize(self, message: Message, attribute: str) -> list[Token]:
        tokens: list[Token] = super().tokenize(message, attribute)
        for token in tokens:
            token.lemma = number_shape(token.lemma)
        return tokens
