"""The baseline every model is compared with: TF-IDF retrieval (Lowe et al., 2015).

A context and a candidate are each a TF-IDF vector over the same vocabulary (fitted on
the training contexts and responses, with the chatbot's tokeniser, speakers included);
the score is their cosine. Scored on the same 1-of-N candidates as the model.
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from chatbot.data import Pairs
from chatbot.text import tokenize, tokenize_turns


class TfidfRetriever:
    """``fit(train)`` then ``score(contexts, responses)`` or ``rank(context, pool)``."""

    def __init__(self, sublinear_tf: bool = True):
        self.vectorizer = TfidfVectorizer(
            analyzer=lambda tokens: tokens, sublinear_tf=sublinear_tf, min_df=1
        )

    def fit(self, train: Pairs) -> TfidfRetriever:
        self.vectorizer.fit(train.context_tokens() + train.response_tokens())
        return self

    def contexts(self, contexts) -> object:
        return self.vectorizer.transform([tokenize_turns(c) for c in contexts])

    def responses(self, texts) -> object:
        return self.vectorizer.transform([tokenize(t) for t in texts])

    def score_candidates(self, pairs: Pairs, cand: np.ndarray) -> np.ndarray:
        """(N, n) cosines of each row's context with its candidates (see ``one_of_n``)."""
        Xc = self.contexts([pairs.contexts[i] for i in cand[:, 0]])
        distinct, where = np.unique(cand, return_inverse=True)
        Xr = self.responses([pairs.responses[i] for i in distinct])
        where = where.reshape(cand.shape)
        out = np.empty(cand.shape)
        for k in range(cand.shape[1]):
            out[:, k] = np.asarray(Xc.multiply(Xr[where[:, k]]).sum(axis=1)).ravel()
        return out  # rows are L2-normalised by TfidfVectorizer: the dot product is the cosine
