"""A retrieval chatbot: dual LSTM encoders, a FAISS index and an HTTP API.

The course's project (``labs/lab08_chatbot_project.ipynb``) builds it; this package is
the given part, and it runs on the functions the project notebook exports
(``exports/chatbot_parts.py``, see :mod:`chatbot.parts`).

==================  ===============================================================
``text``            the tokeniser (speakers as tokens) and the vocabulary
``data``            SGD as context/response pairs, split by dialogue; 1-of-N test sets
``baseline``        TF-IDF retrieval, scored like the model
``model``           the dual encoder: first-stage and matching scores
``train``           the training loop (InfoNCE over sampled and in-batch negatives)
``evaluate``        Recall@k (1 of 10, 1 of 2, full index) and the A/B simulation
``index``           the FAISS index and the ``Retriever`` the service asks
``app``, ``pages``  the FastAPI service: ``POST /reply``, the rating page
``guard``           bad requests refused with a sentence that says why (413, 415, 422)
``ratings``         the SQLite store of human ratings
``report``          ``python -m chatbot report``
==================  ===============================================================

``python -m chatbot train | index | serve | report`` (see ``chatbot/__main__.py``).
"""
