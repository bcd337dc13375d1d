import { initShell } from '../lib/shell.js'; initShell();
