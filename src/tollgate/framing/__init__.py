"""Wire framings: SSE and AWS event-stream, bytes ⇄ frames. Imports nothing from tollgate."""
