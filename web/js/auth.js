// The sign-in screen: log in or sign up, one form with a switch between the two.

import { post, setToken } from './api.js';
import { $ } from './dom.js';

export function showAuth(onAuthed) {
  let signup = false;
  const form = $('auth-form');
  const error = $('auth-error');
  const render = () => {
    $('auth-title').textContent = signup ? 'Create an account' : 'Welcome back';
    $('auth-submit').textContent = signup ? 'Sign up' : 'Log in';
    $('auth-switch-text').textContent = signup ? 'Already have an account?' : 'Need an account?';
    $('auth-switch').textContent = signup ? 'Log in' : 'Sign up';
    $('auth-password').autocomplete = signup ? 'new-password' : 'current-password';
    error.textContent = '';
  };
  $('auth-switch').onclick = () => { signup = !signup; render(); };
  // Too many attempts: the wait the server asks for, counted down, the button off until then.
  let waiting = null;
  const wait = (secs) => {
    clearInterval(waiting);
    let left = secs;
    const tick = () => {
      if (left <= 0) {
        clearInterval(waiting);
        waiting = null;
        error.textContent = '';
        $('auth-submit').disabled = false;
        return;
      }
      error.textContent = `Too many attempts. Try again in ${left} s.`;
      left--;
    };
    $('auth-submit').disabled = true;
    tick();
    waiting = setInterval(tick, 1000);
  };
  form.onsubmit = async (e) => {
    e.preventDefault();
    const username = $('auth-username').value.trim();
    const password = $('auth-password').value;
    // The server checks too; these say what is wrong before a round trip.
    if (signup && !/^[A-Za-z0-9_.-]{2,32}$/.test(username)) {
      error.textContent = 'Usernames are 2–32 letters, digits, _ . or -.';
      return $('auth-username').focus();
    }
    if (signup && [...password].length < 8) {
      error.textContent = 'Passwords need at least 8 characters.';
      return $('auth-password').focus();
    }
    $('auth-submit').disabled = true;
    try {
      const s = await post(signup ? '/auth/signup' : '/auth/login', { username, password });
      setToken(s.token);
      $('auth').hidden = true;
      onAuthed(s.user);
    } catch (err) {
      if (err.retryAfter) return wait(Math.ceil(err.retryAfter));
      error.textContent = err.message;
    } finally {
      if (!waiting) $('auth-submit').disabled = false;
    }
  };
  render();
  $('app').hidden = true;
  $('auth').hidden = false;
  $('auth-username').focus();
}
