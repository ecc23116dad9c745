"""`fanout report`: a run folder drawn as one self-contained HTML page.

- model: what is drawn, as data;
- journal, load, slots: reading a run folder (or a merged run's shard folders) into it;
- axis, svg: the timeline and the histogram;
- sections, page, assets: the page around them.

It reads the folder after the run (or during it), so a run is never slowed by it."""
