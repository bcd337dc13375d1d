// Runs the ES modules that attnviz/page.py inlined in a notebook output or an exported page
// (a classic script: Jupyter and file:// pages run it as it is). The modules and the page's
// data come gzipped and base64-encoded (half floats compress ~4×; DecompressionStream is in
// every browser since 2023). Each module's imports were replaced by __attnviz_module_N__ (N:
// the index of the module imported, which comes before it): each module becomes a blob: URL in
// turn, so the same static/js modules as the web UI run with nothing fetched. Every output on
// a page carries its own copy and this script; each is started once.
(function () {
  "use strict";

  async function unpack(root, name) {
    const text = root.querySelector(`script[data-attnviz-${name}]`).textContent.trim();
    const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return JSON.parse(await new Response(stream).text());
  }

  async function start(root) {
    const bundle = await unpack(root, "modules");
    const urls = [];
    bundle.modules.forEach((source, i) => {
      const code = source.replace(/__attnviz_module_(\d+)__/g, (_, n) => urls[Number(n)]);
      urls[i] = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
    });
    const [view, page] = await Promise.all([import(urls[bundle.entry]), unpack(root, "page")]);
    await view.mount(root.querySelector(".attnviz-view"), page);
    root.dataset.attnviz = "drawn";
    root.querySelector(".attnviz-fallback").remove();
  }

  for (const root of document.querySelectorAll('[data-attnviz="pending"]')) {
    root.dataset.attnviz = "loading";
    start(root).catch((error) => {
      root.dataset.attnviz = "failed";
      const note = root.querySelector(".attnviz-fallback");
      if (note) note.textContent = `attnviz could not draw this output: ${error && error.message}`;
      console.error(error);
    });
  }
})();
