// The WebAuthn ceremony for a form on Akamon's MFA pages: read the options the server embedded,
// ask the browser's authenticator, put its answer in the form, submit. Without WebAuthn support
// the button stays hidden and the other methods remain.
(() => {
  const supported = window.PublicKeyCredential && typeof PublicKeyCredential.parseCreationOptionsFromJSON === 'function' && typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function';
  if (!supported) return;
  for (const button of document.querySelectorAll('button[data-webauthn]')) {
    const form = button.closest('form');
    const failure = form.querySelector('.webauthn-failure');
    button.hidden = false;
    button.addEventListener('click', async () => {
      failure.hidden = true;
      try {
        const options = JSON.parse(document.getElementById(button.dataset.options).textContent);
        const credential =
          button.dataset.webauthn === 'create'
            ? await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) })
            : await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
        form.querySelector('input[name="credential"]').value = JSON.stringify(credential.toJSON());
        form.submit();
      } catch {
        failure.hidden = false;
      }
    });
  }
})();
