"""Persons, samples, model artifacts and access events in SQLAlchemy, with a FAISS index (issue 3).

Imports nothing from enroll/, recognize/, gan/ or api/.
"""
