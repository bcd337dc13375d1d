// Runs the ES modules that attnviz/page.py inlined in a notebook output or an exported page
// (a classic script: Jupyter and file:// pages run it as it is). Each module's source comes
// with its imports replaced by __attnviz_module_N__ (N: the index of the module imported,
// which comes before it): each becomes a blob: URL in turn, so the same static/js modules as
// the web UI run with nothing fetched. Every output on a page carries its own copy and this
// script; each is started once.
(function () {
  "use strict";
  for (const root of document.querySelectorAll('[data-attnviz="pending"]')) {
    root.dataset.attnviz = "loading";
    const read = (name) => JSON.parse(root.querySelector(`script[data-attnviz-${name}]`).textContent);
    const fail = (error) => {
      root.dataset.attnviz = "failed";
      const note = root.querySelector(".attnviz-fallback");
      if (note) note.textContent = `attnviz could not draw this output: ${error && error.message}`;
      console.error(error);
    };
    try {
      const bundle = read("modules");
      const urls = [];
      bundle.modules.forEach((source, i) => {
        const code = source.replace(/__attnviz_module_(\d+)__/g, (_, n) => urls[Number(n)]);
        urls[i] = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
      });
      const page = read("page");
      import(urls[bundle.entry])
        .then((view) => view.mount(root.querySelector(".attnviz-view"), page))
        .then(() => {
          root.dataset.attnviz = "drawn";
          const note = root.querySelector(".attnviz-fallback");
          if (note) note.remove();
        })
        .catch(fail);
    } catch (error) {
      fail(error);
    }
  }
})();
