import { html, nothing } from 'lit';
import { Page } from '../base.ts';
import { errorText, signIn } from '../session.ts';

class SignInPage extends Page {
  static override properties = { error: { state: true }, busy: { state: true } };
  declare error: string | undefined;
  declare busy: boolean;

  private async submit(e: SubmitEvent) {
    e.preventDefault();
    const field = this.querySelector<HTMLTextAreaElement>('#token')!;
    this.busy = true;
    this.error = undefined;
    try {
      await signIn(field.value.trim());
      field.value = '';
      this.dispatchEvent(new Event('mediary-signed-in', { bubbles: true }));
    } catch (err) {
      this.error = errorText(err);
    } finally {
      this.busy = false;
    }
  }

  override render() {
    return html`<section class="card narrow">
      <h1>Sign in</h1>
      <p>
        Paste a user token: one your identity provider issued, or one the admin mints with
        <code>mediary users token --user NAME</code>.
      </p>
      <form @submit=${this.submit}>
        <label for="token">Token</label>
        <textarea id="token" rows="4" required autocomplete="off" spellcheck="false"></textarea>
        ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : nothing}
        <button class="primary" type="submit" ?disabled=${this.busy}>
          ${this.busy ? 'Checking…' : 'Sign in'}
        </button>
      </form>
      <p class="muted small">The token stays in this tab only (session storage) and is never put in a URL.</p>
    </section>`;
  }
}
customElements.define('mediary-signin-page', SignInPage);
