"""The attnviz web service (FastAPI). Imports models/, defines no nn.Module."""
