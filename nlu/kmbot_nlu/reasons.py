"""Why a buyer cancels: a sentence classifier over the 12 cancel-reason tags, as a Rasa component.

A cancel reason is a property of the whole sentence ("别家便宜好几块", "I ordered it twice by accident"), not of a
span, so it is read by a classifier rather than tagged token by token. The component is trained with the rest of
the model from its own data (``nlu/reasons/*.yml``: whole buyer messages per tag, plus ``none`` for messages
that give no reason) and adds a ``cancel_reason`` entity whose value is the tag, with the probability as its
confidence. Messages that carry no reason, or whose best tag is not probable enough, get none: the dialogue
then asks. The tag is written to the parse result's own ``cancel_reason`` field (``{"value", "confidence"}``),
not to ``entities``: a reason is a property of the whole message, and a whole-message entity would overlap the
order ids and accounts tagged inside it (a button still sends ``cancel_reason`` as an entity). Character n-grams (1-3, within words) carry typos, homophones and mixed Chinese/English; long digit
runs (order ids, phone numbers) are reduced to their shape so they never decide a reason.
"""

from __future__ import annotations

import logging
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

log = logging.getLogger(__name__)

ENTITY = "cancel_reason"
NO_REASON = "none"
TAGS = (
    "user_mistake",
    "demand_changed",
    "found_cheaper",
    "wrong_account",
    "wrong_region",
    "payment_problem",
    "arrival_too_slow",
    "unclear_description",
    "merchant_out_of_stock",
    "merchant_malicious",
    "duplicate_order",
    "other",
)
# Intents whose training examples never state a cancel reason: extra negatives for the ``none`` class.
REASONLESS_INTENTS = ("greet", "goodbye", "thank", "affirm", "bot_identity", "handoff_wait", "human_handoff")
LONG_NUMBER = re.compile(r"\d{4,}")
MODEL_FILE = "reasons.pkl"


def normalise(text: str) -> str:
    """Lower case, long numbers by shape, at most 600 characters (the request is stated early)."""
    return LONG_NUMBER.sub("0", text.lower())[:600]


def read_reason_examples(folder: Path) -> list[tuple[str, str]]:
    """(text, tag) pairs from every ``*.yml`` in ``folder``; unknown tags are an error, not a silent skip."""
    pairs: list[tuple[str, str]] = []
    for path in sorted(folder.glob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in document.get("reasons") or []:
            tag = str(block.get("tag"))
            if tag not in TAGS and tag != NO_REASON:
                raise ValueError(f"{path}: unknown cancel reason tag {tag!r}")
            for line in str(block.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    pairs.append((line[2:].strip(), tag))
    return pairs


def build_pipeline(c: float = 4.0) -> Pipeline:
    features = FeatureUnion(
        [
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, min_df=1)),
            ("words", TfidfVectorizer(analyzer="word", token_pattern=r"[a-z']{2,}", sublinear_tf=True)),
        ]
    )
    classifier = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    return Pipeline([("features", features), ("classifier", classifier)])


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class CancelReasonClassifier(GraphComponent, EntityExtractorMixin):
    """Adds ``cancel_reason`` (one of the 12 tags) to the parse result of messages that state why to cancel."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            # folder of the reason data, relative to the Rasa project (training runs there)
            "data": "reasons",
            # below this probability the reason is not stated clearly enough: no entity, the dialogue asks
            "threshold": 0.35,
            "C": 4.0,
            "max_negatives": 400,
            "random_seed": 42,
        }

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        pipeline: Pipeline | None = None,
    ) -> None:
        self._config = config
        self._storage = model_storage
        self._resource = resource
        self._pipeline = pipeline

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> CancelReasonClassifier:
        return cls(config, model_storage, resource)

    def _negatives(self, training_data: TrainingData) -> list[tuple[str, str]]:
        texts = [
            example.get(TEXT)
            for example in training_data.intent_examples
            if example.get("intent") in REASONLESS_INTENTS and example.get(TEXT)
        ]
        rng = np.random.default_rng(self._config["random_seed"])
        rng.shuffle(texts)
        return [(text, NO_REASON) for text in texts[: self._config["max_negatives"]]]

    def train(self, training_data: TrainingData) -> Resource:
        examples = read_reason_examples(Path(self._config["data"]))
        if not examples:
            log.warning(
                "no cancel reason examples under %s: the reason classifier stays empty", self._config["data"]
            )
            return self._resource
        examples += self._negatives(training_data)
        texts = [normalise(text) for text, _ in examples]
        labels = [tag for _, tag in examples]
        pipeline = build_pipeline(self._config["C"])
        pipeline.fit(texts, labels)
        self._pipeline = pipeline
        with self._storage.write_to(self._resource) as directory:
            (directory / MODEL_FILE).write_bytes(pickle.dumps(pipeline))
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> CancelReasonClassifier:
        pipeline = None
        try:
            with model_storage.read_from(resource) as directory:
                path = directory / MODEL_FILE
                if path.exists():
                    pipeline = pickle.loads(path.read_bytes())
        except ValueError:
            log.warning("the reason classifier has no trained model: it adds no reasons")
        return cls(config, model_storage, resource, pipeline)

    def predict(self, text: str) -> tuple[str, float]:
        """The likeliest tag (or ``none``) and its probability."""
        if self._pipeline is None or not text.strip():
            return NO_REASON, 1.0
        probabilities = self._pipeline.predict_proba([normalise(text)])[0]
        best = int(np.argmax(probabilities))
        return str(self._pipeline.classes_[best]), float(probabilities[best])

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            if not text or text.startswith("/"):
                continue
            tag, probability = self.predict(text)
            if tag == NO_REASON or probability < self._config["threshold"]:
                continue
            reading = {
                "value": tag,
                "confidence": round(probability, 4),
                "extractor": self.__class__.__name__,
            }
            message.set(ENTITY, reading, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
