"""Ingestion: files in, cleaned and tagged report chunks out, into the index.

    loaders.load_document(path)      -> LoadedDocument (text, page offsets)
    cleaning.clean(document)         -> CleanedText (debris removed, widths normalised)
    metadata.detect_metadata(...)    -> ReportMetadata (region, year, title, ...)
    chunking.Chunker.run(text)       -> list[Chunk] (section-aware, token-sized)
    pipeline.Ingestor.run(paths)     -> IngestSummary (incremental writes to the index)
"""
