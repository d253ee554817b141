// A page that answers a form shows the address of the page it is (data-url), so that a reload or a
// return through the history asks for that page instead of sending the form again.
history.replaceState(history.state, '', document.currentScript.dataset.url);
