"""The attnviz web service (FastAPI). Imports models/, defines no nn.Module."""

from app import allocator

# before anything imports torch: PyTorch reads its huge-page setting at its first allocation
ALLOCATOR = allocator.tune()
